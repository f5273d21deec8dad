//! Replays every committed corpus input through its harness: what the
//! fuzzer once found interesting must keep passing.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_harness() {
    let corpora = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    for (name, harness) in unikernel_fuzz::targets() {
        let dir = corpora.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (every target commits a corpus)", dir.display()))
            .map(|entry| entry.expect("readable corpus entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: empty corpus");
        for input in &inputs {
            let data = std::fs::read(input).expect("readable corpus input");
            eprintln!("{name}: {}", input.display());
            harness(&data);
        }
        println!("{name}: {} inputs replayed", inputs.len());
    }
}
