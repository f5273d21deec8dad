//! The linker script (`targets/x86_64/unikernel.ld`) refuses, when linking,
//! an image the boot code could not run, with a message that says why.

mod common;

use common::project::{Project, text};
use std::fs;

#[test]
fn an_image_too_large_for_the_fine_grained_mappings_fails_to_link_with_the_reason() {
    let project = Project::new();
    let main = project.app.join("src/main.rs");
    let source = fs::read_to_string(&main).unwrap();
    // 17 MiB of bss: the image would end above the 16 MiB that paging.rs
    // maps with 4 KiB pages.
    let big = source
        .replace(
            "#[unikernel(log = \"info\")]",
            "static mut BIG: [u8; 17 << 20] = [0; 17 << 20];\n\n#[unikernel(log = \"info\")]",
        )
        .replace(
            "async fn main() -> Result<(), Error> {",
            "async fn main() -> Result<(), Error> {\n    \
             // SAFETY: nothing else touches BIG.\n    \
             unsafe { (&raw mut BIG).cast::<u8>().write_volatile(1) };",
        );
    assert_ne!(source, big, "the template's main changed: update this test");
    fs::write(&main, big).unwrap();
    let build = project.run(&["build", "--quiet"]);
    assert!(!build.status.success(), "a 17 MiB image linked\n{}", text(&build));
    let stderr = String::from_utf8_lossy(&build.stderr);
    assert!(
        stderr.contains("unikernel: the image (code, data, bss and boot stack) must end below the range paging.rs maps with 4 KiB pages"),
        "{}",
        text(&build)
    );
}
