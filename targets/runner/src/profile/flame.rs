//! Sampled stacks, named by the image's symbols, folded into call paths
//! (`outer;...;leaf count`, the flame graph tools' format) and drawn as an
//! SVG flame graph with `inferno`, the maintained Rust port of Brendan
//! Gregg's FlameGraph scripts.

use super::{Profile, Stack};
use crate::image::Image;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Writes `profile` as a flame graph to `file`; returns the one-line
/// summary for the user.
pub fn write(profile: &Profile, image: &Image, image_path: &Path, file: &Path) -> Result<String, String> {
    let folded = fold(&profile.stacks, |addr| image.symbolize(addr));
    let samples = profile.samples();
    let Some((hottest, self_samples)) = hottest(&folded) else {
        return Err(match &profile.error {
            Some(e) => format!("no profile: sampling failed: {e}"),
            None => "no profile: the guest ended before the first sample".into(),
        });
    };
    let name = image_path.file_name().map_or("image".into(), |n| n.to_string_lossy());
    let mut options = inferno::flamegraph::Options::default();
    options.title = format!("{name}: guest CPU time");
    options.subtitle = Some(format!("{samples} samples of the instruction pointer and frame-pointer stack"));
    options.count_name = "samples".into();
    let lines: Vec<String> = folded.iter().map(|(stack, n)| format!("{stack} {n}")).collect();
    let out = std::fs::File::create(file).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), std::io::BufWriter::new(out))
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    let rate = samples as f64 / profile.elapsed.as_secs_f64().max(1e-9);
    let held = 100.0 * profile.held.as_secs_f64() / profile.elapsed.as_secs_f64().max(1e-9);
    let share = 100.0 * self_samples as f64 / samples as f64;
    let mut summary = format!(
        "profile: {samples} samples ({rate:.0}/s; the guest was held {held:.0}% of the time for them); \
         hottest: {hottest} ({share:.1}% of samples); flame graph in {}",
        file.display()
    );
    if let Some(e) = &profile.error {
        summary += &format!(" (sampling stopped early: {e})");
    }
    Ok(summary)
}

/// Each stack as `outer;...;leaf`, with the samples of all stacks that name
/// the same functions.
fn fold(stacks: &HashMap<Stack, u64>, symbolize: impl Fn(u64) -> Option<String>) -> BTreeMap<String, u64> {
    let mut folded = BTreeMap::new();
    for (stack, n) in stacks {
        let names: Vec<String> = stack
            .iter()
            .enumerate()
            .rev()
            // A return address follows its call, which may be the last
            // instruction of its function: name the call's.
            .map(|(depth, &addr)| frame_name(symbolize(if depth == 0 { addr } else { addr.saturating_sub(1) })))
            .collect();
        *folded.entry(names.join(";")).or_default() += n;
    }
    folded
}

/// The function of `symbol` (`name+0xoffset`), without what would break
/// the folded format: `;` separates frames (and appears in array types such
/// as `[u8; 4]`), a line holds one stack.
fn frame_name(symbol: Option<String>) -> String {
    let Some(symbol) = symbol else {
        return "[unknown]".into();
    };
    let name = symbol.rsplit_once("+0x").map_or(symbol.as_str(), |(name, _)| name);
    name.replace(';', ",").replace(['\n', '\r'], " ")
}

/// The function most samples were in (the leaf of most stacks) and its
/// sample count; the first by name among equals.
fn hottest(folded: &BTreeMap<String, u64>) -> Option<(&str, u64)> {
    let mut leaves: BTreeMap<&str, u64> = BTreeMap::new();
    for (stack, n) in folded {
        *leaves.entry(stack.rsplit(';').next().unwrap_or(stack)).or_default() += n;
    }
    leaves.into_iter().rev().max_by_key(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbols(addr: u64) -> Option<String> {
        match addr {
            0x1000..0x1100 => Some(format!("app::main+{:#x}", addr - 0x1000)),
            0x2000..0x2100 => Some(format!("app::hot+{:#x}", addr - 0x2000)),
            0x3000..0x3100 => Some(format!("<[u8; 4] as app::Trait>::f+{:#x}", addr - 0x3000)),
            0x4000..0x4100 => Some("evil\nname;x+0x0".into()),
            _ => None,
        }
    }

    #[test]
    fn stacks_fold_outermost_first_and_merge_by_function() {
        let stacks = HashMap::from([
            (vec![0x2010, 0x1020], 3),
            (vec![0x2050, 0x1020], 2),
            (vec![0x2050, 0x1040], 1),
            (vec![0x1030], 4),
        ]);
        let folded = fold(&stacks, symbols);
        assert_eq!(folded, BTreeMap::from([("app::main".into(), 4), ("app::main;app::hot".into(), 6)]));
        assert_eq!(hottest(&folded), Some(("app::hot", 6)));
    }

    #[test]
    fn a_return_address_is_named_by_its_call() {
        // 0x2100 is just past app::hot: the call was its last instruction.
        let folded = fold(&HashMap::from([(vec![0x1010, 0x2100], 1)]), symbols);
        assert_eq!(folded.keys().collect::<Vec<_>>(), ["app::hot;app::main"]);
        // The leaf is where the instruction pointer is, not before it.
        let folded = fold(&HashMap::from([(vec![0x1000], 1)]), symbols);
        assert_eq!(folded.keys().collect::<Vec<_>>(), ["app::main"]);
    }

    #[test]
    fn names_cannot_break_the_folded_format() {
        let stacks = HashMap::from([(vec![0x3000, 0x4001, 0x9999_0000], 2)]);
        let folded = fold(&stacks, symbols);
        assert_eq!(folded.keys().collect::<Vec<_>>(), ["[unknown];evil name,x;<[u8, 4] as app::Trait>::f"]);
        assert_eq!(hottest(&folded), Some(("<[u8, 4] as app::Trait>::f", 2)));
        assert_eq!(hottest(&BTreeMap::new()), None);
    }
}
