//! `--print-firecracker-config`: the image as a Firecracker VM, in the
//! JSON of `firecracker --config-file`, with the devices its records ask
//! for. Firecracker announces its virtio-mmio devices on the kernel command
//! line and has no exit device, which the guest handles (`--machine
//! firecracker` runs the same device model under QEMU). Firecracker needs
//! hardware KVM, so the config is checked here, not run.

use super::{Backend, Devices, disk_file};
use crate::image::Image;
use crate::options::{Disk, Options};
use serde_json::json;

/// The config, or why Firecracker cannot run the image as asked.
pub fn config(opts: &Options, image: &Image) -> Result<String, String> {
    let kernel = std::path::absolute(&opts.image).map_err(|e| format!("{}: {e}", opts.image.display()))?;
    let mut vm = json!({
        "boot-source": {
            "kernel_image_path": kernel,
            "boot_args": opts.kernel_args.join(" "),
        },
        "machine-config": { "vcpu_count": 1, "mem_size_mib": opts.memory_bytes().div_ceil(1 << 20) },
    });
    for device in Devices::of(&image.records)?.attached {
        let (key, value) = match device.backend {
            Backend::Network => {
                let tap =
                    opts.tap.as_ref().ok_or("Firecracker has no user networking: give the tap with --tap IFNAME")?;
                ("network-interfaces", json!([{ "iface_id": "net0", "host_dev_name": tap }]))
            }
            Backend::Disk => {
                if let Some(Disk::Url(url)) = &opts.disk {
                    return Err(format!("Firecracker opens only files, not {url}"));
                }
                let path = std::path::absolute(disk_file(opts)?).map_err(|e| e.to_string())?;
                let drive = json!({ "drive_id": "disk0", "path_on_host": path, "is_root_device": false, "is_read_only": false });
                ("drives", json!([drive]))
            }
            Backend::Entropy => ("entropy", json!({})),
            Backend::LogFile | Backend::Channel => {
                return Err(
                    "Firecracker has no virtio console: an image with `virtio_console` or `channel` cannot run there"
                        .into(),
                );
            }
        };
        vm[key] = value;
    }
    Ok(serde_json::to_string_pretty(&vm).expect("JSON values serialize"))
}

#[cfg(test)]
mod tests {
    use super::config;
    use crate::image::Image;
    use crate::options::{Parsed, parse};
    use serde_json::Value;
    use unikernel_core::vmm::{Record, virtio};

    fn options(args: &[&str]) -> crate::options::Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Parsed::Run(o)) => *o,
            _ => panic!("options"),
        }
    }

    fn image(devices: &[u16]) -> Image {
        let mut image = Image::empty();
        image.records = devices.iter().map(|&d| Record::virtio(d, "app").required()).collect();
        image
    }

    #[test]
    fn devices_become_firecrackers_sections() {
        let disk = std::env::temp_dir().join(format!("unikernel-fc-config-{}.img", std::process::id()));
        let disk_arg = disk.display().to_string();
        let opts = options(&["/img", "--memory", "48M", "--tap", "tap7", "--disk", &disk_arg, "--", "log=debug"]);
        let vm: Value =
            serde_json::from_str(&config(&opts, &image(&[virtio::NET, virtio::BLOCK, virtio::ENTROPY])).unwrap())
                .unwrap();
        let _ = std::fs::remove_file(&disk);
        assert_eq!(vm["boot-source"]["kernel_image_path"], "/img");
        assert_eq!(vm["boot-source"]["boot_args"], "log=debug");
        assert_eq!(vm["machine-config"]["mem_size_mib"], 48);
        assert_eq!(vm["network-interfaces"][0]["host_dev_name"], "tap7");
        assert_eq!(vm["drives"][0]["path_on_host"], disk_arg);
        assert_eq!(vm["entropy"], serde_json::json!({}));
        let bare: Value = serde_json::from_str(&config(&options(&["/img"]), &image(&[])).unwrap()).unwrap();
        assert!(bare.get("drives").is_none() && bare.get("network-interfaces").is_none(), "{bare}");
    }

    #[test]
    fn what_firecracker_lacks_is_refused() {
        assert!(config(&options(&["/img"]), &image(&[virtio::NET])).unwrap_err().contains("--tap"));
        let url = options(&["/img", "--disk", "nbd://localhost/x"]);
        assert!(config(&url, &image(&[virtio::BLOCK])).unwrap_err().contains("only files"));
        assert!(config(&options(&["/img"]), &image(&[virtio::CONSOLE])).unwrap_err().contains("no virtio console"));
    }
}
