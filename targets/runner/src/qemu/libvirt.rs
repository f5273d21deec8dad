//! `--print-libvirt-xml`: the image as a libvirt domain for `virsh define`,
//! booted directly from its kernel with the devices its records ask for.
//!
//! What libvirt 9.0 (Debian 12) has elements for is written as elements:
//! machine, memory, accelerator, the serial console (a pty for `virsh
//! console`, logged to a file), a tap, a disk file, the entropy source, on
//! virtio-mmio for microvm. The rest is QEMU's own arguments in
//! `<qemu:commandline>`: the exit device (libvirt has no isa-debug-exit),
//! microvm's options, a disk URL, and user networking with the port
//! forwards: libvirt's `<portForward>` needs the passt backend, which
//! libvirt 9.0.0 refuses (`Invalid value for attribute 'type' in element
//! 'backend': 'passt'`), and slirp's `hostfwd` has no element.

use super::{
    Backend, Chosen, Devices, MICROVM_OPTIONS, MODERN_MMIO, QBOOT, Transport, data_dir, disk_file, drive, forwards,
    package_dir, seabios, user_netdev,
};
use crate::image::{Arch, Image};
use crate::options::{Disk, Machine, Options};
use quick_xml::Writer;
use quick_xml::events::BytesText;
use std::path::Path;

/// Bus 0's first slot for the devices on PCI machines, above those of the
/// machine itself and of libvirt's controllers.
const FIRST_SLOT: u8 = 16;
const QEMU_NAMESPACE: &str = "http://libvirt.org/schemas/domain/qemu/1.0";

/// The domain XML, or why libvirt cannot run the image as asked.
pub fn domain(opts: &Options, image: &Image, accel: Chosen) -> Result<String, String> {
    if image.arch != Arch::X86_64 {
        return Err("--print-libvirt-xml writes x86 domains: build the image for x86_64-unknown-none".into());
    }
    if opts.machine == Machine::Firecracker {
        return Err("libvirt has no Firecracker machine: use --machine microvm, q35 or pc \
                    (--print-firecracker-config writes Firecracker's own config)"
            .into());
    }
    let devices = Devices::of(&image.records)?;
    let name = match &opts.libvirt_name {
        Some(name) => name.clone(),
        None => opts.image.file_name().map_or("unikernel".into(), |n| n.to_string_lossy().into_owned()),
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!("invalid domain name {name:?}: libvirt's names are not empty and hold no '/'"));
    }
    let microvm = opts.machine.is_microvm();
    let mut qemu: Vec<String> = Vec::new();
    if microvm {
        qemu.extend(["-machine".into(), MICROVM_OPTIONS.into()]);
        if !devices.attached.is_empty() {
            qemu.extend(["-global".into(), MODERN_MMIO.into()]);
        }
    }
    qemu.extend(["-device".into(), devices.exit_device()?]);
    let log = data_dir(&opts.image, package_dir().as_deref())?.join(format!("{name}.console.log"));
    let mut hardware = vec![
        element("serial")
            .attr("type", "pty")
            .child(element("log").attr("file", absolute(&log)?).attr("append", "off"))
            .child(element("target").attr("port", "0")),
        // Else libvirt adds a USB controller, on a PCI bus microvm lacks.
        element("controller").attr("type", "usb").attr("model", "none"),
        element("memballoon").attr("model", "none"),
    ];
    let mut slots = 0;
    for device in devices.attached {
        let model = device.model(Transport::of(opts.machine, image.arch));
        let native = match device.backend {
            Backend::Network => match &opts.tap {
                Some(tap) => element("interface")
                    .attr("type", "ethernet")
                    .child(element("target").attr("dev", tap).attr("managed", "no"))
                    .child(element("model").attr("type", "virtio")),
                None => {
                    let netdev = user_netdev(&forwards(opts, &image.records));
                    qemu.extend(["-netdev".into(), netdev, "-device".into(), device_json(&model, "netdev", "net0")]);
                    continue;
                }
            },
            // libvirt would need the URL taken apart into its elements.
            Backend::Disk if let Some(Disk::Url(url)) = &opts.disk => {
                qemu.extend(["-drive".into(), drive(url), "-device".into(), device_json(&model, "drive", "disk0")]);
                continue;
            }
            Backend::Disk => element("disk")
                .attr("type", "file")
                .attr("device", "disk")
                .child(element("driver").attr("name", "qemu").attr("type", "raw"))
                .child(element("source").attr("file", absolute(Path::new(&disk_file(opts)?))?))
                .child(element("target").attr("dev", "vda").attr("bus", "virtio")),
            Backend::Entropy => element("rng")
                .attr("model", "virtio")
                .child(element("backend").attr("model", "random").text("/dev/urandom")),
            Backend::LogFile | Backend::Channel => {
                return Err("the image has a virtio console (`virtio_console`, or a host channel for traces, \
                            captures or metrics), which --print-libvirt-xml does not write yet: run it with the runner"
                    .into());
            }
        };
        let address = match microvm {
            true => element("address").attr("type", "virtio-mmio"),
            // The guest looks on bus 0 only; on q35 libvirt would put the
            // device behind a root port of its own.
            false => element("address")
                .attr("type", "pci")
                .attr("domain", "0")
                .attr("bus", "0")
                .attr("slot", (FIRST_SLOT + slots).to_string())
                .attr("function", "0"),
        };
        slots += 1;
        hardware.push(native.child(address));
    }
    qemu.extend(opts.qemu_args.iter().cloned());

    let mut os =
        element("os").child(element("type").attr("arch", "x86_64").attr("machine", opts.machine.name()).text("hvm"));
    if !microvm && !seabios(opts.machine) {
        os = os.child(element("loader").attr("type", "rom").attr("readonly", "yes").text(QBOOT));
    }
    os = os.child(element("kernel").text(absolute(&opts.image)?));
    if !opts.kernel_args.is_empty() {
        os = os.child(element("cmdline").text(opts.kernel_args.join(" ")));
    }
    let (kind, cpu) = match accel {
        // As the runner's `host,-arch-capabilities`: nested kvm_pvm rejects that MSR.
        Chosen::Kvm => (
            "kvm",
            element("cpu")
                .attr("mode", "host-passthrough")
                .child(element("feature").attr("policy", "disable").attr("name", "arch-capabilities")),
        ),
        Chosen::Tcg { .. } => ("qemu", element("cpu").attr("mode", "maximum")),
    };
    let domain = element("domain")
        .attr("type", kind)
        .attr("xmlns:qemu", QEMU_NAMESPACE)
        .child(element("name").text(name))
        .child(element("memory").attr("unit", "KiB").text(opts.memory_bytes().div_ceil(1024).to_string()))
        .child(element("vcpu").text("1"))
        .child(os)
        // Else libvirt starts the machine with -no-acpi, and microvm's
        // guest finds its devices in the ACPI tables.
        .child(element("features").child(element("acpi")))
        .child(cpu)
        // The guest's reset is its end, as the runner's -no-reboot.
        .children(["on_poweroff", "on_reboot", "on_crash"].map(|event| element(event).text("destroy")))
        .child(element("devices").children(hardware))
        .child(
            element("qemu:commandline").children(qemu.into_iter().map(|arg| element("qemu:arg").attr("value", arg))),
        );
    domain.check()?;
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    domain.write(&mut writer).expect("writing to memory does not fail");
    Ok(String::from_utf8(writer.into_inner()).expect("the elements are UTF-8"))
}

/// A `-device` in QEMU's JSON form, which QEMU adds in order with
/// libvirt's own (also JSON), after those of the older `key=value` form:
/// that form would take PCI slot 1 before libvirt's root port, which
/// libvirt put there.
fn device_json(model: &str, backend: &str, id: &str) -> String {
    serde_json::json!({ "driver": model, backend: id }).to_string()
}

/// `path` made absolute (libvirt resolves nothing against the caller's
/// directory), as UTF-8.
fn absolute(path: &Path) -> Result<String, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    absolute.to_str().map(String::from).ok_or_else(|| format!("{}: not UTF-8, which XML cannot carry", path.display()))
}

/// An element of the domain. quick-xml escapes its text and attribute
/// values when writing.
struct Element {
    name: &'static str,
    attributes: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Empty,
    Text(String),
    Children(Vec<Element>),
}

fn element(name: &'static str) -> Element {
    Element { name, attributes: Vec::new(), body: Body::Empty }
}

impl Element {
    fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attributes.push((name, value.into()));
        self
    }

    fn text(mut self, text: impl Into<String>) -> Self {
        self.body = Body::Text(text.into());
        self
    }

    fn child(self, child: Element) -> Self {
        self.children([child])
    }

    fn children(mut self, more: impl IntoIterator<Item = Element>) -> Self {
        match &mut self.body {
            Body::Children(children) => children.extend(more),
            _ => self.body = Body::Children(more.into_iter().collect()),
        }
        self
    }

    /// Refuses what XML 1.0 cannot carry even escaped: control characters
    /// other than tab and line ends, U+FFFE and U+FFFF.
    fn check(&self) -> Result<(), String> {
        let values = self.attributes.iter().map(|(name, value)| (*name, value));
        let text = match &self.body {
            Body::Text(text) => Some((self.name, text)),
            _ => None,
        };
        for (what, value) in values.chain(text) {
            if let Some(c) =
                value.chars().find(|&c| (c < ' ' && !"\t\n\r".contains(c)) || c == '\u{fffe}' || c == '\u{ffff}')
            {
                return Err(format!("`{what}` of the domain would hold {c:?}, which XML cannot carry: {value:?}"));
            }
        }
        match &self.body {
            Body::Children(children) => children.iter().try_for_each(Element::check),
            _ => Ok(()),
        }
    }

    fn write(&self, writer: &mut Writer<Vec<u8>>) -> std::io::Result<()> {
        let start =
            writer.create_element(self.name).with_attributes(self.attributes.iter().map(|(n, v)| (*n, v.as_str())));
        match &self.body {
            Body::Empty => start.write_empty()?,
            Body::Text(text) => start.write_text_content(BytesText::new(text))?,
            Body::Children(children) => start.write_inner_content(|w| children.iter().try_for_each(|c| c.write(w)))?,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::domain;
    use crate::image::Image;
    use crate::options::{Options, Parsed, parse};
    use crate::qemu::{Chosen, TcgReason};
    use std::path::PathBuf;
    use unikernel_core::forward::{Forward, Protocol};
    use unikernel_core::vmm::{Record, virtio};

    const TCG: Chosen = Chosen::Tcg { why: TcgReason::Requested };

    /// A package directory holding an image at `target/.../examples/app`
    /// (the console log goes beside it, in `.unikernel/`), removed on drop.
    struct Package(PathBuf);

    impl Package {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("unikernel-libvirt-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("target/x86_64-unknown-none/debug/examples")).unwrap();
            Self(dir)
        }

        fn image(&self) -> String {
            self.0.join("target/x86_64-unknown-none/debug/examples/app").display().to_string()
        }
    }

    impl Drop for Package {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn options(args: &[&str]) -> Options {
        match parse(args.iter().map(|s| s.to_string())) {
            Ok(Parsed::Run(o)) => *o,
            _ => panic!("options"),
        }
    }

    /// An image whose records ask for `devices` and put the exit device at 0x501.
    fn image(devices: &[u16], more: &[Record]) -> Image {
        let mut image = Image::empty();
        image.records = devices.iter().map(|&d| Record::virtio(d, "app").required()).collect();
        image.records.push(Record::exit_port(0x501, "target").required());
        image.records.extend_from_slice(more);
        image
    }

    /// `xml` parsed back, as libvirt would read it.
    fn parsed(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"))
    }

    fn text<'a>(doc: &'a roxmltree::Document, name: &str) -> Option<&'a str> {
        doc.descendants().find(|n| n.has_tag_name(name)).and_then(|n| n.text())
    }

    fn attribute<'a>(doc: &'a roxmltree::Document, element: &str, name: &str) -> Option<&'a str> {
        doc.descendants().find(|n| n.has_tag_name(element)).and_then(|n| n.attribute(name))
    }

    /// The QEMU arguments passed through, in order.
    fn qemu_args(doc: &roxmltree::Document) -> Vec<String> {
        let ns = "http://libvirt.org/schemas/domain/qemu/1.0";
        doc.descendants()
            .filter(|n| n.has_tag_name((ns, "arg")))
            .map(|n| n.attribute("value").unwrap().into())
            .collect()
    }

    #[test]
    fn devices_come_from_the_records() {
        let package = Package::new("records");
        let disk = package.0.join("disk.img").display().to_string();
        let image_path = package.image();
        let opts = options(&[&image_path, "--memory", "1536K", "--disk", &disk, "--libvirt-name", "web", "log=debug"]);
        let dns = Forward { protocol: Protocol::Udp, host: 5353, guest: 53 };
        let records = image(&[virtio::NET, virtio::BLOCK, virtio::ENTROPY], &[Record::forward(dns, "main")]);
        let xml = domain(&opts, &records, TCG).unwrap();
        let doc = parsed(&xml);
        assert_eq!(doc.root_element().attribute("type"), Some("qemu"), "TCG");
        assert_eq!(attribute(&doc, "cpu", "mode"), Some("maximum"));
        assert_eq!(text(&doc, "name"), Some("web"));
        assert_eq!(text(&doc, "memory"), Some("1536"));
        assert_eq!(attribute(&doc, "type", "machine"), Some("microvm"));
        assert_eq!(text(&doc, "kernel"), Some(image_path.as_str()));
        assert_eq!(text(&doc, "cmdline"), Some("log=debug"));
        assert_eq!(attribute(&doc, "source", "file"), Some(disk.as_str()));
        assert_eq!(text(&doc, "backend"), Some("/dev/urandom"));
        let log = package.0.join(".unikernel/web.console.log").display().to_string();
        assert_eq!(attribute(&doc, "log", "file"), Some(log.as_str()));
        let mmio = doc.descendants().filter(|n| n.has_tag_name("address")).map(|n| n.attribute("type"));
        assert_eq!(mmio.collect::<Vec<_>>(), [Some("virtio-mmio"); 2], "the disk's and the entropy source's");
        let args = qemu_args(&doc);
        for (flag, value) in [
            ("-device", "isa-debug-exit,iobase=0x501,iosize=0x04"),
            ("-netdev", "user,id=net0,hostfwd=udp:127.0.0.1:5353-:53"),
            ("-device", r#"{"driver":"virtio-net-device","netdev":"net0"}"#),
            ("-machine", "rtc=on,ioapic2=off"),
        ] {
            assert!(args.windows(2).any(|w| w == [flag, value]), "{flag} {value} in {args:?}");
        }

        // Nothing asked, nothing attached.
        let bare = domain(&options(&[&image_path]), &image(&[], &[]), TCG).unwrap();
        let doc = parsed(&bare);
        for absent in ["disk", "rng", "interface", "cmdline"] {
            assert!(!doc.descendants().any(|n| n.has_tag_name(absent)), "{absent}:\n{bare}");
        }
        assert!(!qemu_args(&doc).iter().any(|a| a == "-netdev"), "{bare}");
        assert_eq!(text(&doc, "name"), Some("app"), "the image's name by default");
    }

    #[test]
    fn pci_machines_put_the_devices_on_bus_0_and_kvm_passes_the_cpu_through() {
        let package = Package::new("pci");
        let image_path = package.image();
        let opts = options(&[&image_path, "--machine", "q35", "--tap", "tap7"]);
        let xml = domain(&opts, &image(&[virtio::NET, virtio::ENTROPY], &[]), Chosen::Kvm).unwrap();
        let doc = parsed(&xml);
        assert_eq!(doc.root_element().attribute("type"), Some("kvm"));
        assert_eq!(attribute(&doc, "cpu", "mode"), Some("host-passthrough"));
        assert_eq!(attribute(&doc, "type", "machine"), Some("q35"));
        assert_eq!(attribute(&doc, "interface", "type"), Some("ethernet"));
        let interface = doc.descendants().find(|n| n.has_tag_name("interface")).unwrap();
        let target = interface.children().find(|n| n.has_tag_name("target")).unwrap();
        assert_eq!((target.attribute("dev"), target.attribute("managed")), (Some("tap7"), Some("no")));
        let slots =
            doc.descendants().filter(|n| n.has_tag_name("address")).map(|n| (n.attribute("bus"), n.attribute("slot")));
        assert_eq!(slots.collect::<Vec<_>>(), [(Some("0"), Some("16")), (Some("0"), Some("17"))]);
        assert!(!qemu_args(&doc).iter().any(|a| a == "-netdev" || a.contains("rtc")), "{xml}");
    }

    #[test]
    fn quotes_and_ampersands_are_escaped_and_come_back_unchanged() {
        let package = Package::new(r#"a'b&c"d<e>"#);
        let disk = package.0.join(r#"it's "my" <disk> & more.img"#).display().to_string();
        let image_path = package.image();
        let name = r#"k&v's "<db>""#;
        let args = r#"greeting="<hi> & 'bye'""#;
        let opts = options(&[&image_path, "--disk", &disk, "--libvirt-name", name, args]);
        let xml = domain(&opts, &image(&[virtio::BLOCK], &[]), TCG).unwrap();
        assert!(!xml.contains(name) && !xml.contains(args), "escaped:\n{xml}");
        let doc = parsed(&xml);
        assert_eq!(text(&doc, "name"), Some(name));
        assert_eq!(text(&doc, "cmdline"), Some(args));
        assert_eq!(attribute(&doc, "source", "file"), Some(disk.as_str()));
        assert_eq!(text(&doc, "kernel"), Some(image_path.as_str()));
    }

    #[test]
    fn what_xml_or_libvirt_cannot_carry_is_refused() {
        let package = Package::new("refused");
        let image_path = package.image();
        let app = image(&[], &[]);
        let err = |args: &[&str], image: &Image| {
            let opts = options(&[&[image_path.as_str()][..], args].concat());
            domain(&opts, image, TCG).expect_err("refused")
        };
        assert!(err(&["bell=\u{7}"], &app).contains("XML cannot carry"));
        assert!(err(&["--libvirt-name", "a/b"], &app).contains("invalid domain name"));
        assert!(err(&["--libvirt-name", ""], &app).contains("invalid domain name"));
        assert!(err(&["--machine", "firecracker"], &app).contains("no Firecracker machine"));
        assert!(err(&[], &image(&[virtio::CONSOLE], &[])).contains("virtio console"));
        assert!(err(&[], &Image::empty()).contains("no exit device"));
    }
}
