//! The manifest beside an output (`OUTPUT.manifest.json`): which input and which options wrote
//! it, so that resuming with another input or with options that change records is refused.
//!
//! A resume trusts that input `i` is the same request as in the first run. The manifest checks
//! what can be checked cheaply: for a file, its size, a hash of its content, and its
//! modification time; for a URL argument, the URL. Stdin cannot be checked at all, so resuming it
//! needs the user's word (`--assume-same-input`), and so does any input that fails a check.
//!
//! The content decides, not the time: a file that was touched, copied or checked out again with
//! the same bytes is the same input, and one that only grew by lines added at the end still holds
//! the first run's requests under the same indexes. Files up to [`WHOLE`] are hashed whole; a
//! larger one by its first and last 64 KiB only, which cannot see a change in the middle, so for
//! those an unchanged time is still required. The input's hash is XXH3-128, which runs at memory
//! speed: it tells a changed input from the same one, and no one gains by forging a collision with
//! their own input, so a cryptographic hash would only cost CPU before the first request.
//!
//! Secrets stay out of the file: headers and bodies are kept as SHA-256 digests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use ring::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::engine::Config;
use crate::request::{LineDefaults, Source};

/// The manifest format written by this version.
const VERSION: u32 = 1;
/// Bytes sampled at each end of an input file.
const SAMPLE: u64 = 64 * 1024;
/// The largest input file hashed whole: reading it costs more than hashing it.
const WHOLE: u64 = 1 << 30;

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
        /// XXH3-128 of its first and last 64 KiB, hex (a manifest of an earlier version, which
        /// kept SHA-256, has none: the input then counts as changed).
        #[serde(default)]
        sample_xxh3: String,
        /// XXH3-128 of all of it, hex, when it is at most 1 GiB (absent in manifests
        /// written before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_xxh3: Option<String>,
    },
    /// A URL (or glob) given as an argument.
    Url {
        /// The argument.
        url: String,
    },
    /// Standard input: nothing to compare.
    Stdin,
    /// Inputs a program handed to the library one by one (the Python module's
    /// `stream(inputs, output=…)`): nothing to compare either, so a resume takes the caller's word.
    Program,
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
                let mut file = File::open(path).map_err(|e| crate::request::reader::cannot_open(path, e))?;
                let meta = file.metadata()?;
                let modified_ns = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
                let content_xxh3 =
                    if meta.len() <= WHOLE { Some(prefix_xxh3(&mut file, meta.len())?) } else { None };
                InputIdentity::File {
                    path: path.clone(),
                    size: meta.len(),
                    modified_ns,
                    sample_xxh3: sample(&mut file, meta.len())?,
                    content_xxh3,
                }
            }
        })
    }

    fn name(&self) -> String {
        match self {
            InputIdentity::File { path, .. } => path.display().to_string(),
            InputIdentity::Url { url } => url.clone(),
            InputIdentity::Stdin => "stdin".into(),
            InputIdentity::Program => "the inputs a program handed over".into(),
        }
    }

    /// Why `self` (now) is not `then` (the first run's), if it is not.
    fn differs(&self, then: &InputIdentity) -> Option<String> {
        match (self, then) {
            (InputIdentity::Stdin, InputIdentity::Stdin) => {
                Some("the input is stdin, which cannot be compared with the first run's".into())
            }
            (InputIdentity::Program, InputIdentity::Program) => Some(
                "the inputs were handed over by a program, which cannot be compared with the first run's"
                    .into(),
            ),
            (
                InputIdentity::File { path, size, modified_ns, sample_xxh3, content_xxh3 },
                InputIdentity::File {
                    size: size_then,
                    modified_ns: modified_then,
                    sample_xxh3: sample_then,
                    content_xxh3: content_then,
                    ..
                },
            ) => {
                let what = if size == size_then && sample_xxh3 == sample_then {
                    match (content_xxh3, content_then) {
                        // The same bytes: touched, copied or checked out again, it is the same input.
                        (Some(now), Some(then)) if now == then => return None,
                        (Some(_), Some(_)) => "its content differs".to_owned(),
                        _ if modified_ns == modified_then => return None,
                        _ if *size > WHOLE => format!(
                            "it was modified since, and at {} it is too large to be compared whole",
                            crate::stats::human_bytes(*size)
                        ),
                        _ => "it was modified since, and the first run's manifest (of an older \
                              outofsync) has no digest of all of it to compare"
                            .to_owned(),
                    }
                } else if size > size_then {
                    match content_then {
                        Some(then) => match only_appended(path, *size_then, then) {
                            Ok(true) => return None,
                            Ok(false) => format!(
                                "its size is {size} bytes, was {size_then}, and not only by lines added at the end"
                            ),
                            Err(e) => format!("it cannot be read again: {e}"),
                        },
                        None => format!(
                            "its size is {size} bytes, was {size_then} (too large to tell whether lines were only added)"
                        ),
                    }
                } else if size != size_then {
                    format!("its size is {size} bytes, was {size_then}")
                } else {
                    "its content differs".to_owned()
                };
                Some(format!("the input {} changed: {what}", path.display()))
            }
            (now, then) if now == then => None,
            (now, then) => Some(format!("the input is {}, was {}", now.name(), then.name())),
        }
    }
}

/// Whether the file at `path` is the one hashed to `content_then` when it was `size_then` bytes,
/// with whole lines added at the end: its first `size_then` bytes hash the same, and they ended a
/// line (or what follows starts a new one), so no line of the first run's was extended and every
/// input keeps its index.
fn only_appended(path: &Path, size_then: u64, content_then: &str) -> io::Result<bool> {
    let mut file = File::open(path)?;
    if prefix_xxh3(&mut file, size_then)? != content_then {
        return Ok(false);
    }
    if size_then == 0 {
        return Ok(true);
    }
    // The last byte of the first run's input and the two after it.
    let mut seam = Vec::with_capacity(3);
    file.seek(SeekFrom::Start(size_then - 1))?;
    Read::by_ref(&mut file).take(3).read_to_end(&mut seam)?;
    Ok(seam.starts_with(b"\n") || seam[1..].starts_with(b"\n") || seam[1..].starts_with(b"\r\n"))
}

/// XXH3-128 of the first `len` bytes of `file`, read from its start, hex.
fn prefix_xxh3(file: &mut File, len: u64) -> io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut hash = Xxh3::new();
    let mut buf = vec![0; 256 * 1024];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while being read",
            ));
        }
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    Ok(hex(&hash.digest128().to_be_bytes()))
}

/// XXH3-128 of the first and last [`SAMPLE`] bytes (the whole file when it is smaller).
fn sample(file: &mut File, size: u64) -> io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut hash = Xxh3::new();
    let mut buf = Vec::with_capacity(SAMPLE as usize);
    Read::by_ref(file).take(SAMPLE).read_to_end(&mut buf)?;
    hash.update(&buf);
    if size > SAMPLE {
        buf.clear();
        file.seek(SeekFrom::Start(size.saturating_sub(SAMPLE).max(SAMPLE)))?;
        Read::by_ref(file).take(SAMPLE).read_to_end(&mut buf)?;
        hash.update(&buf);
    }
    Ok(hex(&hash.digest128().to_be_bytes()))
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
    #[error("{}", describe(inputs, options))]
    Differs {
        /// Each way the input differs, in words (`--assume-same-input` would skip these).
        inputs: Vec<String>,
        /// Each option that differs, and the manifest's format if it does, in words.
        options: Vec<String>,
    },
}

/// The differences, and what would make a resume go ahead. `--overwrite` is not offered here:
/// it is never what a resume needs, and it loses every record (the caller says so).
fn describe(inputs: &[String], options: &[String]) -> String {
    let mut text = inputs.iter().chain(options).cloned().collect::<Vec<_>>().join("; ");
    if !inputs.is_empty() {
        text += ". If the input still holds the first run's requests in the same order (more may \
                 follow at the end), --assume-same-input resumes anyway, at your own risk: an input \
                 that moved would be skipped or fetched under another one's index";
    }
    if !options.is_empty() {
        text += ". Give the options of the first run to resume it";
    }
    text
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

    /// The manifest of a run whose inputs a program hands over one by one rather than reads from
    /// sources (the Python module): one [`InputIdentity::Program`], and the options of `config`.
    pub fn for_program(config: &Config) -> Self {
        Manifest {
            version: VERSION,
            inputs: vec![InputIdentity::Program],
            options: options(config, &LineDefaults::default()),
        }
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
        let (mut inputs, mut options) = (Vec::new(), Vec::new());
        if then.version != VERSION {
            options
                .push(format!("the manifest is of format {}, this outofsync reads {VERSION}", then.version));
        }
        if !assume_same_input {
            if self.inputs.len() != then.inputs.len() {
                inputs.push(format!(
                    "{} input sources given, the first run had {}",
                    self.inputs.len(),
                    then.inputs.len()
                ));
            } else {
                inputs.extend(self.inputs.iter().zip(&then.inputs).filter_map(|(a, b)| a.differs(b)));
            }
        }
        let names: std::collections::BTreeSet<&String> =
            self.options.keys().chain(then.options.keys()).collect();
        for name in names.into_iter().filter(|name| !MAY_CHANGE.contains(&name.as_str())) {
            let (now, was) = (self.options.get(name), then.options.get(name));
            if now != was {
                let show = |v: Option<&String>| v.map_or("unset".to_owned(), |v| abbreviate(v));
                options.push(format!("{name} is {}, was {}", show(now), show(was)));
            }
        }
        if inputs.is_empty() && options.is_empty() {
            Ok(())
        } else {
            Err(Mismatch::Differs { inputs, options })
        }
    }
}

/// Options kept in the manifest that a resume may change all the same. `--max-pages` says how far
/// a walk goes, not what its records say: a resume with a larger one goes on with the walks a
/// smaller one cut, which is the way to get their rest.
const MAY_CHANGE: [&str; 1] = ["--max-pages"];

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
        ("-i, --keep-header", format!("{:?}", config.keep_headers)),
        ("the templates (--url-template, --input-format…)", templates),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(credentials(config))
    .collect()
}

/// Who the credentials say the client is (a user, a client id, a token endpoint), as a digest:
/// a resume as someone else is refused, one with a rotated token or a changed password is not.
/// Left out without credentials, so that manifests written before they existed still match.
fn credentials(config: &Config) -> Option<(String, String)> {
    let auth = config.auth.as_ref()?;
    let hosts: Vec<String> = config.auth_hosts.iter().map(ToString::to_string).collect();
    let identity = digest(&[auth.describe().as_bytes(), hosts.join(",").as_bytes()]);
    Some(("the credentials (-u, --bearer-env, --oauth2-…, --auth-host)".to_owned(), identity))
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
    fn the_same_bytes_or_lines_added_at_the_end_pass_whatever_the_time_says() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(&input, "a\nb\n").unwrap();
        let then = manifest(&input);
        let touch = |path: &Path, secs: u64| {
            let file = File::options().write(true).open(path).unwrap();
            file.set_modified(UNIX_EPOCH + std::time::Duration::from_secs(secs)).unwrap();
        };
        touch(&input, 1_000_000);
        manifest(&input).check(&then, false).expect("touched");
        let copy = dir.path().join("copy.txt");
        std::fs::copy(&input, &copy).unwrap();
        manifest(&copy).check(&then, false).expect("copied");
        std::fs::write(&input, "a\nb\nc\n").unwrap();
        manifest(&input).check(&then, false).expect("a line added at the end");

        let refused = |text: &str, then: &Manifest| {
            std::fs::write(&input, text).unwrap();
            let err = manifest(&input).check(then, false).unwrap_err().to_string();
            assert!(err.contains("--assume-same-input resumes anyway"), "{err}");
            manifest(&input).check(then, true).expect("the user's word is taken");
            err
        };
        assert!(refused("a\nB\n", &then).contains("its content differs"));
        assert!(refused("a\n", &then).contains("its size is 2 bytes, was 4"));
        assert!(refused("x\na\nb\n", &then).contains("not only by lines added at the end"));
        // Without a line end at the end, what follows would lengthen the last line.
        std::fs::write(&input, "a\nb").unwrap();
        let open_ended = manifest(&input);
        assert!(refused("a\nbc\n", &open_ended).contains("not only by lines added"));
        std::fs::write(&input, "a\nb\r\nc\n").unwrap();
        manifest(&input).check(&open_ended, false).expect("a new line after the last one");

        // A manifest of before whole digests: the time still decides.
        std::fs::write(&input, "a\nb\n").unwrap();
        let mut old = manifest(&input);
        let InputIdentity::File { content_xxh3, .. } = &mut old.inputs[0] else { unreachable!() };
        *content_xxh3 = None;
        manifest(&input).check(&old, false).expect("untouched");
        touch(&input, 2_000_000);
        assert!(refused("a\nb\n", &old).contains("has no digest of all of it"));
    }

    #[test]
    fn a_programs_inputs_need_the_callers_word_and_its_options_still_count() {
        let then = Manifest::for_program(&Config::default());
        let err = Manifest::for_program(&Config::default()).check(&then, false).unwrap_err().to_string();
        assert!(err.contains("handed over by a program"), "{err}");
        Manifest::for_program(&Config::default()).check(&then, true).unwrap();
        let other = Manifest::for_program(&Config { max_body: 10, ..Config::default() });
        let err = other.check(&then, true).unwrap_err().to_string();
        assert!(err.contains("--max-body is 10"), "{err}");
        let stdin = Manifest::new(&[Source::Stdin], &Config::default(), &LineDefaults::default()).unwrap();
        let err = then.check(&stdin, false).unwrap_err().to_string();
        assert!(err.contains("was stdin"), "{err}");
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
