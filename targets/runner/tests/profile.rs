//! `--profile FILE`: the runner samples the `hotspot` example through
//! QEMU's gdb server while it runs (under TCG, as everywhere here) and
//! writes a flame graph in which the example's hot function holds the most
//! samples, on stacks walked down to the example's `main`.

mod common;

use common::boot_example;

/// The function `examples/hotspot.rs` spends most of its time in.
const HOT: &str = "hotspot::collatz_longest";
/// The example's `main`, as the `#[unikernel]` attribute names it.
const MAIN: &str = "hotspot::__unikernel_user_main";
/// The inferno namespace of the frames' sample offsets and widths.
const INFERNO: &str = "http://github.com/jonhoo/inferno";

/// One box of the flame graph.
#[derive(Debug)]
struct Frame {
    name: String,
    /// Samples in the frame and everything above it, from the title.
    samples: u64,
    /// Its first sample and width in samples (`fg:x`, `fg:w`).
    x: u64,
    width: u64,
    /// Its row: the root is lowest (largest y), callees above it.
    y: u64,
}

impl Frame {
    fn spans(&self, other: &Frame) -> bool {
        self.x <= other.x && other.x + other.width <= self.x + self.width
    }
}

/// The frames of an inferno SVG, from each `<g>`'s `<title>` ("name (N
/// samples, P%)") and `<rect>`.
fn frames(svg: &str) -> Vec<Frame> {
    // inferno writes SVG 1.1's DOCTYPE.
    let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
    let doc = roxmltree::Document::parse_with_options(svg, options).unwrap_or_else(|e| panic!("not XML: {e}"));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut frames = Vec::new();
    for g in doc.descendants().filter(|n| n.has_tag_name("g")) {
        let title = g.children().find(|n| n.has_tag_name("title")).and_then(|t| t.text());
        let rect = g.children().find(|n| n.has_tag_name("rect"));
        let (Some(title), Some(rect)) = (title, rect) else { continue };
        let (name, count) = title.rsplit_once(" (").expect("title: name (N samples, P%)");
        let samples = count.split(' ').next().unwrap().replace(',', "").parse().expect("a sample count");
        let number = |value: Option<&str>| value.expect("a rect attribute").parse::<u64>().expect("a number");
        frames.push(Frame {
            name: name.to_string(),
            samples,
            x: number(rect.attribute((INFERNO, "x"))),
            width: number(rect.attribute((INFERNO, "w"))),
            y: number(rect.attribute("y")),
        });
    }
    frames
}

/// Samples each function was the leaf of: a frame's samples less those
/// of the frames in the row above it within its span.
fn self_samples(frames: &[Frame]) -> std::collections::BTreeMap<&str, u64> {
    let mut rows: Vec<u64> = frames.iter().map(|f| f.y).collect();
    rows.sort_unstable();
    rows.dedup();
    let mut leaves = std::collections::BTreeMap::new();
    for frame in frames {
        let above = rows.iter().rev().find(|&&y| y < frame.y);
        let callees: u64 = frames.iter().filter(|f| Some(&f.y) == above && frame.spans(f)).map(|f| f.samples).sum();
        *leaves.entry(frame.name.as_str()).or_default() += frame.samples - callees;
    }
    leaves
}

#[test]
fn a_flame_graph_shows_the_hot_function_on_stacks_down_to_main() {
    let svg = std::env::temp_dir().join(format!("unikernel-profile-{}.svg", std::process::id()));
    let _ = std::fs::remove_file(&svg);
    let run = boot_example("hotspot", &["--profile", svg.to_str().unwrap()]);
    run.assert(0, &["longest Collatz sequence"]);
    assert!(run.stderr.contains(&format!("hottest: {HOT}")), "the summary names the hot function:\n{}", run.stderr);

    let text = std::fs::read_to_string(&svg).unwrap_or_else(|e| panic!("no flame graph at {}: {e}", svg.display()));
    let _ = std::fs::remove_file(&svg);
    let frames = frames(&text);
    let total = frames.iter().find(|f| f.name == "all").expect("the root frame").samples;
    assert!(total >= 20, "a second of guest time gives tens of samples: {total}");
    assert!(text.contains(&format!("{total} samples of the instruction pointer")), "subtitle with the count");

    let leaves = self_samples(&frames);
    assert_eq!(leaves.values().sum::<u64>(), total, "every sample has one leaf: {leaves:?}");
    let (hottest, n) = leaves.iter().max_by_key(|(_, n)| **n).unwrap();
    assert_eq!(*hottest, HOT, "{leaves:?}");
    assert!(*n * 2 > total, "the hot function holds most samples: {leaves:?}");

    // Stacks were walked: the hot function's frames stand on main's.
    let hot: Vec<&Frame> = frames.iter().filter(|f| f.name == HOT).collect();
    assert!(!hot.is_empty());
    for h in hot {
        let under = frames.iter().find(|f| f.name == MAIN && f.y > h.y && f.spans(h));
        assert!(under.is_some(), "{MAIN} is not under {h:?}:\n{frames:#?}");
    }
}

#[test]
fn profile_and_gdb_are_refused_together() {
    let run = boot_example("hotspot", &["--profile", "unused.svg", "--gdb"]);
    assert_eq!(run.status, 2, "{}", run.stderr);
    assert!(run.stderr.contains("one client"), "{}", run.stderr);
    assert!(!std::path::Path::new("unused.svg").exists());
}
