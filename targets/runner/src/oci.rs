//! `--oci-layout DIR [--oci-tag NAME]`: the image as an OCI image layout
//! that containerd runs with urunc (Kubernetes `runtimeClassName: urunc`).
//! The layout holds one layer, the kernel at [`KERNEL_PATH`] and urunc's
//! `urunc.json`; the manifest and the image config carry urunc's
//! annotations too. Same image, same tag: same bytes, so same digests.
//!
//! urunc has no type for "a PVH ELF that reads `key=value` words": each of
//! its unikernel types is a convention for the QEMU line and the kernel
//! command line. `mewz` is the one this guest reads: urunc boots it with
//! `qemu -kernel` on the default `pc` machine (our PVH entry note), adds a
//! virtio-net PCI device on the pod's tap, and appends only
//! `ip=ADDR/LEN gateway=GW`, the guest's own `ip=` syntax. `unikraft`
//! writes the address as `netdev.ip=`, which the guest does not read (it
//! would wait for DHCP, which urunc's tap does not serve); `linux` writes
//! the kernel's `ip=ADDR::GW:MASK:...`, which it refuses. So the type is
//! `mewz` and the monitor `qemu` (urunc gives that type no other); the price
//! is that urunc passes no other argument, so kernel arguments are refused
//! here rather than lost there.

use crate::image::{Arch, Image};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use unikernel_core::vmm::{Kind, virtio};

/// Where the kernel is in the container's root file system.
pub const KERNEL_PATH: &str = "/unikernel/kernel";
/// The tag when `--oci-tag` is not given.
pub const DEFAULT_TAG: &str = "latest";
/// The index annotation naming a manifest in a layout (`oci:DIR:TAG`).
const REF_NAME: &str = "org.opencontainers.image.ref.name";

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// urunc's annotations: in the manifest, as image labels, and base64'd in
/// `/urunc.json`, which is what urunc reads when containerd does not pass
/// image annotations on (it does not). `useDMBlock` is explicit: urunc
/// logs an error for a missing one.
fn annotations() -> [(&'static str, &'static str); 5] {
    [
        ("com.urunc.unikernel.unikernelType", "mewz"),
        ("com.urunc.unikernel.hypervisor", "qemu"),
        ("com.urunc.unikernel.binary", KERNEL_PATH),
        ("com.urunc.unikernel.cmdline", ""),
        ("com.urunc.unikernel.useDMBlock", "false"),
    ]
}

/// `value` if it is a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, as
/// registries take them).
pub fn tag(value: &str) -> Result<String, String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut chars = value.chars();
    let valid = chars.next().is_some_and(word) && chars.all(|c| word(c) || c == '.' || c == '-') && value.len() <= 128;
    match valid {
        true => Ok(value.to_string()),
        false => Err(format!("invalid tag `{value}`: expected letters, digits, `_`, `.` and `-`, at most 128")),
    }
}

/// Writes `kernel` (the image's bytes) into the layout `dir` under `tag`,
/// keeping the other tags of a layout already there; returns the
/// manifest's digest.
pub fn write(kernel: &[u8], image: &Image, kernel_args: &[String], dir: &Path, tag: &str) -> Result<String, String> {
    if !kernel_args.is_empty() {
        return Err(format!(
            "urunc passes a `mewz` guest only `ip=` and `gateway=`: the kernel arguments `{}` would not reach it; \
             set them in #[unikernel(...)] instead",
            kernel_args.join(" ")
        ));
    }
    if image.arch != Arch::X86_64 {
        return Err(
            "urunc boots `mewz` guests on QEMU's x86 `pc` machine: build the image for x86_64-unknown-none".into()
        );
    }
    refuse_unattached_devices(image)?;
    let blobs = Blobs::of(kernel)?;
    let layout = Layout::open(dir)?;
    for blob in [&blobs.layer, &blobs.config, &blobs.manifest] {
        layout.put(&format!("blobs/sha256/{}", blob.hex()), &blob.bytes)?;
    }
    layout.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let entry = json!({
        "mediaType": MANIFEST,
        "digest": blobs.manifest.digest(),
        "size": blobs.manifest.bytes.len(),
        "platform": { "architecture": "amd64", "os": "linux" },
        "annotations": { REF_NAME: tag },
    });
    layout.put("index.json", &to_json(&layout.index_with(entry, tag)?))?;
    Ok(blobs.manifest.digest())
}

/// urunc attaches one network device to a `mewz` guest and nothing else (no
/// disk, entropy or console device): an image that requires more would fail there.
fn refuse_unattached_devices(image: &Image) -> Result<(), String> {
    let attached = |device: u16, index: u16| (device, index) == (virtio::NET, 0);
    let unmet =
        image.records.iter().find(|r| r.kind == Kind::Virtio && r.is_required() && !attached(r.device, r.index));
    match unmet {
        Some(record) => Err(format!(
            "`{}` requires a virtio device of type {} (instance {}), which urunc does not attach: \
             it gives this image type only a network device",
            record.requester(),
            record.device,
            record.index
        )),
        None => Ok(()),
    }
}

/// A content-addressed blob.
struct Blob {
    bytes: Vec<u8>,
}

impl Blob {
    fn hex(&self) -> String {
        hex_sha256(&self.bytes)
    }

    fn digest(&self) -> String {
        format!("sha256:{}", self.hex())
    }

    /// The descriptor that points at this blob.
    fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest(), "size": self.bytes.len() })
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialize")
}

/// The image's three blobs.
struct Blobs {
    layer: Blob,
    config: Blob,
    manifest: Blob,
}

impl Blobs {
    fn of(kernel: &[u8]) -> Result<Self, String> {
        let labels: serde_json::Map<String, Value> =
            annotations().iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect();
        let urunc_json: serde_json::Map<String, Value> =
            annotations().iter().map(|(k, v)| (k.to_string(), Value::from(BASE64.encode(v)))).collect();
        let tar = layer_tar(kernel, &to_json(&Value::Object(urunc_json)))
            .map_err(|e| format!("cannot build the layer: {e}"))?;
        let layer = Blob { bytes: gzip(&tar).map_err(|e| format!("cannot compress the layer: {e}"))? };
        let config = Blob {
            bytes: to_json(&json!({
                "architecture": "amd64",
                "os": "linux",
                // urunc reads the annotations; the command is only there
                // because Kubernetes refuses an image without one.
                "config": { "Cmd": [KERNEL_PATH], "Labels": labels },
                "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{}", hex_sha256(&tar))] },
            })),
        };
        let manifest = Blob {
            bytes: to_json(&json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": config.descriptor(CONFIG),
                "layers": [layer.descriptor(LAYER)],
                "annotations": labels,
            })),
        };
        Ok(Self { layer, config, manifest })
    }
}

/// The layer's tar: root-owned entries dated 1970, so that it depends on
/// nothing but the kernel.
fn layer_tar(kernel: &[u8], urunc_json: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut entry = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        tar.append_data(&mut header, path, data)
    };
    let kernel_path = KERNEL_PATH.trim_start_matches('/');
    let kernel_dir = kernel_path.rsplit_once('/').map_or("", |(dir, _)| dir);
    entry(&format!("{kernel_dir}/"), tar::EntryType::Directory, 0o755, &[])?;
    entry(kernel_path, tar::EntryType::Regular, 0o755, kernel)?;
    entry("urunc.json", tar::EntryType::Regular, 0o644, urunc_json)?;
    tar.into_inner()
}

/// gzip with no name and no date in its header.
fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
    gz.write_all(data)?;
    gz.finish()
}

/// The layout directory being written.
struct Layout<'a> {
    dir: &'a Path,
    /// The index already there, if the directory is a layout.
    index: Option<Value>,
}

impl<'a> Layout<'a> {
    /// `dir`, created if missing; an existing one must be empty or a layout.
    fn open(dir: &'a Path) -> Result<Self, String> {
        let at = |e: &dyn std::fmt::Display| format!("{}: {e}", dir.display());
        std::fs::create_dir_all(dir).map_err(|e| at(&e))?;
        let index = match std::fs::read(dir.join("index.json")) {
            Ok(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| at(&format!("index.json is not JSON ({e}); not writing into it")))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let others = std::fs::read_dir(dir).map_err(|e| at(&e))?.filter_map(Result::ok);
                if let Some(other) = others.map(|e| e.file_name()).find(|name| name != "blobs") {
                    return Err(at(&format!(
                        "holds {} but is not an OCI layout (no index.json); not writing into it",
                        other.to_string_lossy()
                    )));
                }
                None
            }
            Err(e) => return Err(at(&e)),
        };
        std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| at(&e))?;
        Ok(Self { dir, index })
    }

    /// The index with `entry` as `tag`, replacing what had that tag.
    fn index_with(&self, entry: Value, tag: &str) -> Result<Value, String> {
        let mut index = self.index.clone().unwrap_or_else(|| json!({ "schemaVersion": 2, "manifests": [] }));
        index["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| format!("{}: index.json has no manifest list; not writing into it", self.dir.display()))?;
        manifests.retain(|m| m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))) != Some(&json!(tag)));
        manifests.push(entry);
        Ok(index)
    }

    /// Writes `path` whole or not at all (a new file renamed over it), so an
    /// interrupted run leaves no blob whose bytes disagree with its name.
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), String> {
        let target = self.dir.join(path);
        let partial = self.dir.join(format!("{path}.partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, &target))
            .map_err(|e| format!("cannot write {}: {e}", target.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unikernel_core::vmm::Record;

    #[test]
    fn tags_are_registry_tags() {
        assert_eq!(tag("v1.2-rc_3").unwrap(), "v1.2-rc_3");
        for bad in ["", ".hidden", "-x", "a:b", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(tag(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn devices_urunc_does_not_attach_and_kernel_arguments_are_refused() {
        let dir = std::env::temp_dir().join(format!("unikernel-oci-refused-{}", std::process::id()));
        let mut image = Image::empty();
        image.records = vec![Record::virtio(virtio::NET, "app").required(), Record::virtio(virtio::ENTROPY, "app")];
        assert!(write(b"k", &image, &[], &dir, "t").is_ok(), "network, and optional entropy");
        let err = write(b"k", &image, &["log=debug".into()], &dir, "t").unwrap_err();
        assert!(err.contains("log=debug") && err.contains("#[unikernel"), "{err}");
        image.records.push(Record::virtio(virtio::NET, "app").instance(1).required());
        let err = write(b"k", &image, &[], &dir, "t").unwrap_err();
        assert!(err.contains("`app` requires a virtio device of type 1 (instance 1)"), "{err}");
        image.records[2] = Record::virtio(virtio::BLOCK, "store").required();
        let err = write(b"k", &image, &[], &dir, "t").unwrap_err();
        assert!(err.contains("`store` requires a virtio device of type 2"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_that_is_not_a_layout_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("unikernel-oci-other-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err = write(b"k", &Image::empty(), &[], &dir, "t").unwrap_err();
        assert!(err.contains("notes.txt") && err.contains("not an OCI layout"), "{err}");
        std::fs::write(dir.join("index.json"), "{]").unwrap();
        assert!(write(b"k", &Image::empty(), &[], &dir, "t").unwrap_err().contains("not JSON"));
        std::fs::write(dir.join("index.json"), r#"{"schemaVersion":2}"#).unwrap();
        assert!(write(b"k", &Image::empty(), &[], &dir, "t").unwrap_err().contains("no manifest list"));
        assert_eq!(std::fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tag_is_replaced_and_the_others_kept() {
        let dir = std::env::temp_dir().join(format!("unikernel-oci-tags-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let one = write(b"one", &Image::empty(), &[], &dir, "a").unwrap();
        let two = write(b"two", &Image::empty(), &[], &dir, "b").unwrap();
        let three = write(b"three", &Image::empty(), &[], &dir, "a").unwrap();
        let index: Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let tagged: Vec<(String, String)> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["annotations"][REF_NAME].as_str().unwrap().into(), m["digest"].as_str().unwrap().into()))
            .collect();
        assert_eq!(tagged, [("b".into(), two), ("a".into(), three.clone())]);
        assert_ne!(one, three);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
