//! The README shows what the binary prints: every sample command in it is
//! run, and each line of its sample output must be a line the binary prints
//! today — the same words and columns, whatever the numbers.

use crate::util::*;

/// A sample: the command after `$ ` and the lines shown under it.
pub(crate) struct Sample {
    /// `vecpar-coord`, or `mpirun` (its arguments then start with its own).
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    lines: Vec<String>,
}

/// The README.
pub(crate) fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The samples of the README's `text` blocks that run on any machine, or
/// (`numa`) those of the blocks shown from the emulated NUMA machine, with
/// its numa_maps (tests/numa.rs checks them there).
pub(crate) fn samples(readme: &str, numa: bool) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut block: Option<Vec<Sample>> = None;
    let mut portable = true;
    for line in readme.lines() {
        match (&mut block, line) {
            (None, "```text") => {
                block = Some(Vec::new());
                portable = true;
            }
            (Some(_), "```") => {
                let done = block.take().expect("in a block");
                if portable != numa {
                    out.extend(done);
                }
            }
            (Some(b), l) => {
                if l.contains("numa-map") {
                    portable = false;
                }
                if let Some(command) = l.strip_prefix("$ ") {
                    let mut words = command.split_whitespace();
                    let program = words.next().unwrap_or_default().to_string();
                    assert!(
                        program.ends_with("vecpar-coord") || program == "mpirun",
                        "a sample runs vecpar-coord, or mpirun: {l}"
                    );
                    b.push(Sample { program, args: words.map(str::to_string).collect(), lines: Vec::new() });
                } else if let Some(s) = b.last_mut()
                    && !l.trim().is_empty()
                    && l.trim() != "…"
                {
                    s.lines.push(l.to_string());
                }
            }
            (None, _) => {}
        }
    }
    out
}

/// A line with its numbers, digests, times, SIMD level and noise verdicts
/// taken out and its spacing collapsed: what must not change.
fn skeleton(line: &str) -> String {
    let words: Vec<String> = line
        .split_whitespace()
        .map(|w| {
            // What a seed fixes stays as printed: digests, chunk bounds and
            // the indices of elements.
            let core = w.trim_matches(|c: char| "(),;:".contains(c));
            let hex = core.len() == 16 && core.chars().all(|c| c.is_ascii_hexdigit());
            let range = core.split_once("..").is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && a.chars().all(|c| c.is_ascii_digit())
                    && b.chars().all(|c| c.is_ascii_digit())
            });
            let index = core.contains('[') && core.ends_with(']');
            if hex || range || index {
                return w.to_string();
            }
            let mut s = String::new();
            let mut chars = w.chars().peekable();
            while let Some(c) = chars.next() {
                if c.is_ascii_digit() {
                    while chars.peek().is_some_and(|n| n.is_ascii_digit() || *n == '.' || *n == ',') {
                        chars.next();
                    }
                    s.push('#');
                } else {
                    s.push(c);
                }
            }
            // A number's trailing separator ("1,000,000," ends a clause).
            s.replace("#,", "#").replace("#.", "#")
        })
        .collect();
    let mut joined = words.join(" ");
    for unit in ["ns", "µs", "ms", "s"] {
        for end in [")", " ", ";", ""] {
            let from = format!("# {unit}{end}");
            if end.is_empty() {
                if joined.ends_with(&from) {
                    let cut = joined.len() - from.len();
                    joined = format!("{}#t", &joined[..cut]);
                }
            } else {
                joined = joined.replace(&from, &format!("#t{end}"));
            }
        }
    }
    for simd in ["avx512", "avx2", "sse2", "scalar"] {
        joined = joined.replace(simd, "<simd>");
    }
    // The noise verdicts depend on the machine's quiet, not on the code.
    let verdicts = ["one-round", "too-short", "noisy", "scattered", "steady"];
    let mut out = Vec::new();
    for part in joined.split(" · ") {
        let words: Vec<&str> = part.split(", ").collect();
        if words.iter().all(|w| verdicts.contains(w)) {
            out.push("<verdicts>".to_string());
        } else {
            out.push(part.to_string());
        }
    }
    out.join(" · ")
}

/// Asserts that each line `sample` shows is one of `printed` (what its
/// command printed, stderr and stdout) in skeleton.
pub(crate) fn check_sample(sample: &Sample, printed: &str) {
    let printed: Vec<String> = printed.lines().map(skeleton).collect();
    for line in &sample.lines {
        let want = skeleton(line);
        // A warning depends on the host (its CPUs, its caches): checked
        // where the host gives it, by its first words.
        if let Some(warning) = want.strip_prefix("vecpar-coord: warning: ") {
            let opening: Vec<&str> = warning.split_whitespace().take(4).collect();
            let given = printed.iter().any(|p| {
                p.strip_prefix("vecpar-coord: warning: ")
                    .is_some_and(|w| w.split_whitespace().take(4).collect::<Vec<_>>() == opening)
            });
            if !given {
                continue;
            }
        }
        assert!(
            printed.contains(&want),
            "README line of `{} {}` is not printed today:\n  {line}\n  as {want}\nprinted:\n{}",
            sample.program,
            sample.args.join(" "),
            printed.join("\n")
        );
    }
}

#[test]
fn the_readme_sample_output_is_what_the_binary_prints() {
    let samples = samples(&readme(), false);
    assert!(samples.len() >= 6, "the README's samples were found: {}", samples.len());
    for sample in &samples {
        assert!(sample.program.ends_with("vecpar-coord"), "a portable sample runs vecpar-coord");
        let args: Vec<&str> = sample.args.iter().map(String::as_str).collect();
        // Some samples end badly on purpose (a worker thread's SIGSEGV
        // takes the process): what matters is what they print.
        let out = coord(&args);
        check_sample(sample, &format!("{}\n{}", out.stderr, out.stdout));
    }
}

#[test]
fn a_skeleton_keeps_the_words_and_columns_only() {
    assert_eq!(
        skeleton("Add:                  40.8     0.000850     0.000588     0.001335"),
        skeleton("Add:  1234.5  0.1  0.2  0.3")
    );
    assert_eq!(skeleton("median 33.4 GB/s (719.5 µs) · IQR 3.1 ms"), "median # GB/s (#t) · IQR #t");
    assert_ne!(skeleton("c digest 08abb979f347e6c2)"), skeleton("c digest 08abb979f347e6c3)"), "digests are fixed");
    assert_ne!(skeleton("elements 0..125440"), skeleton("elements 0..125441"), "chunks are fixed");
    assert_ne!(skeleton("a[500736] = 1234.5"), skeleton("a[500737] = 1234.5"), "indices are fixed");
    assert_eq!(skeleton("pid 4311, on 2 threads"), skeleton("pid 77, on 2 threads"));
    assert_eq!(skeleton("avx2, regular stores · steady"), skeleton("avx512, regular stores · noisy, scattered"));
    assert_ne!(skeleton("Add: 1 2"), skeleton("Add: 1 2 3"), "a column more is a change");
    assert_ne!(skeleton("best GB/s"), skeleton("best MB/s"));
}
