//! The manifest beside an output (`OUTPUT.manifest.json`): which input and which options wrote
//! it, so that resuming with another input or with options that change records is refused.
//!
//! A resume trusts that input `i` is the same request as in the first run. The manifest checks
//! what can be checked cheaply: for a file, its size, modification time and a SHA-256 of its first
//! and last 64 KiB (not the whole file: a 10 GB input would take a minute to hash); for a URL
//! argument, the URL. Stdin cannot be checked at all, so resuming it needs the user's word.
//! Secrets stay out of the file: headers and bodies are kept as digests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};

use crate::engine::Config;
use crate::request::{LineDefaults, Source};

/// The manifest format written by this version.
const VERSION: u32 = 1;
/// Bytes sampled at each end of an input file.
const SAMPLE: u64 = 64 * 1024;

/// Which input and which options wrote an output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format.
    pub version: u32,
    /// Each input source, in order.
    pub inputs: Vec<InputIdentity>,
    /// The options that change what the records say, by name.
    pub options: BTreeMap<String, String>,
}

/// What identifies one input source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputIdentity {
    /// A file.
    File {
        /// Its path as given (shown in messages; a moved file with the same content still matches).
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// Its modification time, in nanoseconds since the Unix epoch.
        modified_ns: u64,
        /// SHA-256 of its first and last 64 KiB, hex.
        sample_sha256: String,
    },
    /// A URL (or glob) given as an argument.
    Url {
        /// The argument.
        url: String,
    },
    /// Standard input: nothing to compare.
    Stdin,
}

impl InputIdentity {
    /// Describes `source` as it is now.
    ///
    /// # Errors
    /// An input file cannot be read.
    pub fn of(source: &Source) -> io::Result<Self> {
        Ok(match source {
            Source::Stdin => InputIdentity::Stdin,
            Source::Url(url) => InputIdentity::Url { url: url.clone() },
            Source::File(path) => {
                let mut file = File::open(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
                let meta = file.metadata()?;
                let modified_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                InputIdentity::File {
                    path: path.clone(),
                    size: meta.len(),
                    modified_ns,
                    sample_sha256: sample(&mut file, meta.len())?,
                }
            }
        })
    }

    fn name(&self) -> String {
        match self {
            InputIdentity::File { path, .. } => path.display().to_string(),
            InputIdentity::Url { url } => url.clone(),
            InputIdentity::Stdin => "stdin".into(),
        }
    }

    /// Why `self` (now) is not `then` (the first run's), if it is not.
    fn differs(&self, then: &InputIdentity) -> Option<String> {
        match (self, then) {
            (InputIdentity::Stdin, InputIdentity::Stdin) => Some(
                "the input is stdin, which cannot be compared with the first run's; if it is the same \
                 input in the same order, say so with --assume-same-input"
                    .into(),
            ),
            (
                InputIdentity::File { size, modified_ns, sample_sha256, path },
                InputIdentity::File { size: s, modified_ns: m, sample_sha256: h, .. },
            ) => {
                let what = if size != s {
                    format!("its size is {size} bytes, was {s}")
                } else if sample_sha256 != h {
                    "its content differs".into()
                } else if modified_ns != m {
                    "it was modified since".into()
                } else {
                    return None;
                };
                Some(format!("the input {} changed: {what}", path.display()))
            }
            (now, then) if now == then => None,
            (now, then) => Some(format!("the input is {}, was {}", now.name(), then.name())),
        }
    }
}

/// SHA-256 of the first and last [`SAMPLE`] bytes (the whole file when it is smaller).
fn sample(file: &mut File, size: u64) -> io::Result<String> {
    let mut hash = Context::new(&SHA256);
    let mut buf = Vec::with_capacity(SAMPLE as usize);
    Read::by_ref(file).take(SAMPLE).read_to_end(&mut buf)?;
    hash.update(&buf);
    if size > SAMPLE {
        buf.clear();
        file.seek(SeekFrom::Start(size.saturating_sub(SAMPLE).max(SAMPLE)))?;
        Read::by_ref(file).take(SAMPLE).read_to_end(&mut buf)?;
        hash.update(&buf);
    }
    Ok(hex(hash.finish().as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        _ = write!(s, "{b:02x}");
        s
    })
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hash = Context::new(&SHA256);
    for part in parts {
        hash.update(&(part.len() as u64).to_le_bytes());
        hash.update(part);
    }
    format!("sha256:{}", hex(hash.finish().as_ref()))
}

/// A resume that the manifest refuses.
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    /// No manifest beside a non-empty output.
    #[error(
        "{} has no manifest ({}), so outofsync cannot tell which input and options wrote it",
        output.display(),
        manifest.display()
    )]
    Missing {
        /// The output.
        output: PathBuf,
        /// Where the manifest should be.
        manifest: PathBuf,
    },
    /// The manifest cannot be read or parsed.
    #[error("cannot read the manifest {}: {why}", path.display())]
    Unreadable {
        /// The manifest.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The input or the options differ from the first run's.
    #[error("{}", differences.join("; "))]
    Differs {
        /// Each difference, in words.
        differences: Vec<String>,
    },
}

impl Manifest {
    /// The manifest of a run of `sources` with these settings.
    ///
    /// # Errors
    /// An input file cannot be read.
    pub fn new(sources: &[Source], config: &Config, defaults: &LineDefaults) -> io::Result<Self> {
        let inputs = sources.iter().map(InputIdentity::of).collect::<io::Result<_>>()?;
        Ok(Manifest { version: VERSION, inputs, options: options(config, defaults) })
    }

    /// Where the manifest of `output` lives.
    pub fn path_for(output: &Path) -> PathBuf {
        let mut name = output.as_os_str().to_owned();
        name.push(".manifest.json");
        PathBuf::from(name)
    }

    /// Reads the manifest of `output`.
    ///
    /// # Errors
    /// It is missing, unreadable or not a manifest.
    pub fn load(output: &Path) -> Result<Self, Mismatch> {
        let path = Self::path_for(output);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Mismatch::Missing { output: output.to_owned(), manifest: path });
            }
            Err(e) => return Err(Mismatch::Unreadable { path, why: e.to_string() }),
        };
        serde_json::from_slice(&text).map_err(|e| Mismatch::Unreadable { path, why: e.to_string() })
    }

    /// Writes the manifest of `output` atomically: a temporary file, synced, renamed over the old.
    ///
    /// # Errors
    /// The directory is not writable, or syncing fails.
    pub fn store(&self, output: &Path) -> io::Result<()> {
        let path = Self::path_for(output);
        let mut temp = path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut file = File::create(&temp)?;
        file.write_all(&serde_json::to_vec_pretty(self).expect("a manifest serialises"))?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, &path)?;
        sync_dir(&path)
    }

    /// Checks that a resume by `self` continues the run that wrote `then`.
    ///
    /// `assume_same_input` skips the input check (stdin, or a file the user knows is unchanged).
    ///
    /// # Errors
    /// Every difference, in words.
    pub fn check(&self, then: &Manifest, assume_same_input: bool) -> Result<(), Mismatch> {
        let mut differences = Vec::new();
        if then.version != VERSION {
            differences
                .push(format!("the manifest is of format {}, this outofsync reads {VERSION}", then.version));
        }
        if !assume_same_input {
            if self.inputs.len() != then.inputs.len() {
                differences.push(format!(
                    "{} input sources given, the first run had {}",
                    self.inputs.len(),
                    then.inputs.len()
                ));
            } else {
                differences.extend(self.inputs.iter().zip(&then.inputs).filter_map(|(a, b)| a.differs(b)));
            }
        }
        let names: std::collections::BTreeSet<&String> =
            self.options.keys().chain(then.options.keys()).collect();
        for name in names {
            let (now, was) = (self.options.get(name), then.options.get(name));
            if now != was {
                let show = |v: Option<&String>| v.map_or("unset".to_owned(), |v| abbreviate(v));
                differences.push(format!("{name} is {}, was {}", show(now), show(was)));
            }
        }
        if differences.is_empty() { Ok(()) } else { Err(Mismatch::Differs { differences }) }
    }
}

/// Digests are long; the first 12 hex digits tell two apart in a message.
fn abbreviate(value: &str) -> String {
    match value.strip_prefix("sha256:") {
        Some(hex) => format!("a different value (sha256:{}…)", &hex[..12.min(hex.len())]),
        None => value.to_owned(),
    }
}

/// The options that change what the records say, named as on the command line.
fn options(config: &Config, defaults: &LineDefaults) -> BTreeMap<String, String> {
    let mut headers: Vec<(&str, &[u8])> = config
        .headers
        .iter()
        .chain(defaults.body_headers.iter())
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    headers.sort();
    let header_parts: Vec<&[u8]> = headers.iter().flat_map(|(n, v)| [n.as_bytes(), *v]).collect();
    let method = defaults.method.as_ref().map_or("default", |m| m.as_str());
    let body = defaults.body.as_ref().map_or_else(|| "none".to_owned(), |b| digest(&[b]));
    // Templates may hold secrets (an API key in a header template): a digest, like headers.
    let templates = defaults.rows.as_ref().map_or_else(
        || "none".to_owned(),
        |rows| digest(&[format!("{:?}", rows.format).as_bytes(), rows.templates.source().as_bytes()]),
    );
    [
        ("--method", method.to_owned()),
        ("the request headers (-H, -A, --json)", digest(&header_parts)),
        ("the request body (-d, --json)", body),
        ("--globoff", defaults.no_globs.to_string()),
        ("--body", format!("{:?}", config.body).to_ascii_lowercase()),
        ("--ok-status", config.ok_status.to_string()),
        ("--max-body", config.max_body.to_string()),
        ("--max-redirects", config.max_redirects.to_string()),
        ("--https-only", config.https_only.to_string()),
        ("--jq", config.filter.as_ref().map_or_else(|| "none".to_owned(), |f| f.source().to_owned())),
        ("--paginate", config.paginate.as_ref().map_or_else(|| "none".to_owned(), |p| p.to_string())),
        ("--max-pages", config.max_pages.to_string()),
        ("the templates (--url-template, --input-format…)", templates),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Makes a rename durable: the directory entry is on disk only once the directory is synced.
pub(crate) fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(input: &Path) -> Manifest {
        Manifest::new(&[Source::File(input.to_owned())], &Config::default(), &LineDefaults::default())
            .unwrap()
    }

    #[test]
    fn the_same_input_and_options_pass_and_a_changed_byte_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "x".repeat(200_000)).unwrap();
        let first = manifest(&input);
        first.store(&dir.path().join("out.jsonl")).unwrap();
        let loaded = Manifest::load(&dir.path().join("out.jsonl")).unwrap();
        assert_eq!(loaded, first);
        manifest(&input).check(&loaded, false).unwrap();

        let mut text = "x".repeat(200_000).into_bytes();
        text[199_000] = b'y';
        std::fs::write(&input, text).unwrap();
        let err = manifest(&input).check(&loaded, false).unwrap_err().to_string();
        assert!(err.contains("content differs") || err.contains("modified"), "{err}");
        manifest(&input).check(&loaded, true).unwrap();
    }

    #[test]
    fn changed_options_are_named_and_stdin_needs_the_users_word() {
        let stdin = [Source::Stdin];
        let then = Manifest::new(&stdin, &Config::default(), &LineDefaults::default()).unwrap();
        let config = Config { max_body: 10, ..Config::default() };
        let now = Manifest::new(&stdin, &config, &LineDefaults::default()).unwrap();
        let err = now.check(&then, false).unwrap_err().to_string();
        assert!(err.contains("--max-body is 10, was 33554432"), "{err}");
        assert!(err.contains("--assume-same-input"), "{err}");
        let same = Manifest::new(&stdin, &Config::default(), &LineDefaults::default()).unwrap();
        same.check(&then, true).unwrap();
        assert!(Manifest::load(Path::new("/nonexistent/out.jsonl")).is_err());
    }
}
