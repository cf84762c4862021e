//! Decoding hostile audio without risking the worker: each file is decoded in a child process
//! of the worker's own binary (`worker decode-audio`), under a memory limit (RLIMIT_AS), a CPU
//! limit (RLIMIT_CPU) and a wall-clock timeout. A decoder that aborts (a 26-byte WebM that asks
//! for 281 TB), loops or is killed fails that one task for good, with the reason; the worker
//! carries on.
//!
//! ```text
//!  worker ──stdin: the file──► worker decode-audio --content-type T --max-seconds S
//!         ◄─stdout: {"ok":true,"facts":…,"truncated":…,"samples":N}\n + N little-endian f32
//!                or {"ok":false,"kind":"undecodable"|"empty","error":…}\n
//! ```

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::audio::{self, AudioError, Decoded, SPEECH_RATE};

/// How a decoder child is limited.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The worker binary to run as `decode-audio`.
    pub binary: PathBuf,
    /// Address-space limit of the child, bytes.
    pub memory_bytes: u64,
    /// CPU seconds of the child.
    pub cpu_seconds: u64,
    /// Wall-clock limit.
    pub timeout: Duration,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Header {
    ok: bool,
    #[serde(default)]
    facts: Option<events::task::AudioFacts>,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    samples: usize,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// `worker decode-audio`: the child's side. Reads the file from stdin, writes the result to
/// stdout. Runs before any runtime or thread starts.
pub fn child_main(args: &[String]) -> i32 {
    let mut content_type = None;
    let mut max_seconds = 1800.0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--content-type" => content_type = it.next().cloned(),
            "--max-seconds" => {
                max_seconds = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(max_seconds)
            }
            _ => {}
        }
    }
    let mut bytes = Vec::new();
    if std::io::stdin().read_to_end(&mut bytes).is_err() {
        return 2;
    }
    let result = audio::decode(bytes, content_type.as_deref(), max_seconds);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let header = match &result {
        Ok(d) => Header {
            ok: true,
            facts: Some(d.facts.clone()),
            truncated: d.truncated,
            samples: d.speech.len(),
            kind: None,
            error: None,
        },
        Err(e) => Header {
            ok: false,
            facts: None,
            truncated: false,
            samples: 0,
            kind: Some(match e {
                AudioError::Empty => "empty".into(),
                AudioError::Undecodable(_) => "undecodable".into(),
            }),
            error: Some(match e {
                AudioError::Undecodable(m) => m.clone(),
                AudioError::Empty => String::new(),
            }),
        },
    };
    let Ok(line) = serde_json::to_string(&header) else {
        return 2;
    };
    if writeln!(out, "{line}").is_err() {
        return 2;
    }
    if let Ok(d) = &result {
        for s in &d.speech {
            if out.write_all(&s.to_le_bytes()).is_err() {
                return 2;
            }
        }
    }
    if out.flush().is_err() {
        return 2;
    }
    0
}

fn crashed(why: String) -> AudioError {
    AudioError::Undecodable(format!("the decoder could not handle this file ({why})"))
}

/// Decodes `bytes` in a limited child process.
pub async fn decode(
    limits: &Limits,
    bytes: Vec<u8>,
    content_type: Option<&str>,
    max_seconds: f64,
) -> Result<Decoded, AudioError> {
    let mut cmd = tokio::process::Command::new(&limits.binary);
    cmd.arg("decode-audio")
        .arg("--max-seconds")
        .arg(max_seconds.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .env_clear()
        .kill_on_drop(true);
    if let Some(ct) = content_type {
        cmd.arg("--content-type").arg(ct);
    }
    let (memory, cpu) = (limits.memory_bytes, limits.cpu_seconds);
    // SAFETY: between fork and exec only async-signal-safe calls (setrlimit) are made.
    unsafe {
        cmd.pre_exec(move || {
            let set = |resource, value: u64| {
                let lim = libc::rlimit {
                    rlim_cur: value as libc::rlim_t,
                    rlim_max: value as libc::rlim_t,
                };
                if libc::setrlimit(resource, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            };
            set(libc::RLIMIT_AS, memory)?;
            set(libc::RLIMIT_CPU, cpu)?;
            set(libc::RLIMIT_CORE, 0)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| crashed(format!("could not start the decoder: {e}")))?;
    let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(crashed("the decoder has no pipes".into()));
    };
    let writer = tokio::spawn(async move {
        // A child that dies early closes the pipe: the write fails, and the exit says why.
        let _ = stdin.write_all(&bytes).await;
        drop(stdin);
    });
    // At most the header and the samples asked for (plus slack for rounding).
    let cap = 64 * 1024 + ((max_seconds.max(0.0) + 2.0) * SPEECH_RATE as f64) as usize * 4;
    let read = async {
        let mut buf = Vec::new();
        let n = (&mut stdout)
            .take(cap as u64 + 1)
            .read_to_end(&mut buf)
            .await;
        (n, buf)
    };
    let outcome = tokio::time::timeout(limits.timeout, async {
        let (n, buf) = read.await;
        let status = child.wait().await;
        (n, buf, status)
    })
    .await;
    writer.abort();
    let (n, buf, status) = match outcome {
        Ok(x) => x,
        Err(_) => {
            let _ = child.start_kill();
            return Err(crashed(format!(
                "decoding took longer than {} s",
                limits.timeout.as_secs()
            )));
        }
    };
    let status = status.map_err(|e| crashed(format!("waiting for the decoder: {e}")))?;
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let why = match status.signal() {
            Some(libc::SIGXCPU) | Some(libc::SIGKILL) => {
                "it used more time or memory than allowed".to_owned()
            }
            Some(libc::SIGABRT) => "it needed more memory than allowed".to_owned(),
            Some(sig) => format!("it crashed with signal {sig}"),
            None => format!("it exited with status {}", status.code().unwrap_or(-1)),
        };
        return Err(crashed(why));
    }
    n.map_err(|e| crashed(format!("reading the decoder's output: {e}")))?;
    if buf.len() > cap {
        return Err(crashed("it wrote more than asked".into()));
    }
    let nl = buf
        .iter()
        .position(|b| *b == b'\n')
        .ok_or_else(|| crashed("no answer".into()))?;
    let header: Header = serde_json::from_slice(&buf[..nl])
        .map_err(|e| crashed(format!("an unreadable answer: {e}")))?;
    if !header.ok {
        return Err(match header.kind.as_deref() {
            Some("empty") => AudioError::Empty,
            _ => AudioError::Undecodable(header.error.unwrap_or_default()),
        });
    }
    let body = &buf[nl + 1..];
    if body.len() != header.samples * 4 {
        return Err(crashed("a truncated answer".into()));
    }
    let speech = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Decoded {
        facts: header
            .facts
            .ok_or_else(|| crashed("an answer without facts".into()))?,
        speech,
        truncated: header.truncated,
    })
}

/// The worker binary when this process is one (so children can be started from it).
pub fn own_worker_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    (name == "worker").then_some(exe)
}
