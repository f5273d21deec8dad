//! With the `self-signed` feature: a fresh self-signed P-256 certificate
//! and key for `localhost`/127.0.0.1, written to OUT_DIR for
//! `include_bytes!` (a key made per build, never one in the repository).

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "self-signed")]
    self_signed();
}

#[cfg(feature = "self-signed")]
fn self_signed() {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(names).expect("generate a certificate");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("cert.der"), cert.der()).expect("write the certificate");
    std::fs::write(out.join("key.der"), key_pair.serialize_der()).expect("write the key");
}
