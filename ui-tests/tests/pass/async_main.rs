#![cfg_attr(target_os = "none", no_std, no_main)]
use unikernel::prelude::*;

#[unikernel]
async fn main() -> Result<(), Error> {
    let task = spawn(async { 40 });
    sleep(Duration::from_millis(1)).await;
    assert_eq!(task.await + 2, 42);
    Ok(())
}
