//! Streaming sample-rate conversion to 16 kHz mono (what Whisper hears).
//!
//! A windowed-sinc (Blackman) polyphase filter: each output sample at input position
//! `n · in / out` is a weighted sum of the input around it, with the cut-off at the lower of the
//! two Nyquist frequencies, so 48 kHz browser audio is not aliased and 8 kHz phone audio is
//! interpolated without images. Rates are integers, so the output positions' fractional parts
//! repeat with period `out / gcd(in, out)`: the weights of each phase are computed once.

/// Input samples on each side of the output position, at the cut-off frequency.
const ZERO_CROSSINGS: f64 = 12.0;
/// Above this many phases the weights are computed per sample instead of tabled.
const MAX_TABLED_PHASES: u64 = 4096;

pub struct Resampler {
    in_rate: u64,
    out_rate: u64,
    /// Half the filter length, in input samples.
    half: i64,
    cutoff: f64,
    /// `phases × (2·half)` weights, or empty when computed on the fly.
    table: Vec<f32>,
    phase_div: u64,
    /// Pending input; `buf[0]` is input sample number `buf_start`.
    buf: Vec<f32>,
    buf_start: i64,
    /// Number of the next output sample.
    next: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn kernel(t: f64, cutoff: f64, half: f64) -> f64 {
    if t.abs() >= half {
        return 0.0;
    }
    let x = std::f64::consts::PI * cutoff * t;
    let sinc = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
    // Blackman window over [-half, half].
    let w = 0.42
        + 0.5 * (std::f64::consts::PI * t / half).cos()
        + 0.08 * (2.0 * std::f64::consts::PI * t / half).cos();
    cutoff * sinc * w
}

impl Resampler {
    pub fn new(in_rate: u32, out_rate: u32) -> Resampler {
        let (in_rate, out_rate) = (in_rate.max(1) as u64, out_rate.max(1) as u64);
        let cutoff = (out_rate as f64 / in_rate as f64).min(1.0);
        let half = (ZERO_CROSSINGS / cutoff).ceil() as i64;
        let g = gcd(in_rate, out_rate);
        let phases = out_rate / g;
        let mut r = Resampler {
            in_rate,
            out_rate,
            half,
            cutoff,
            table: Vec::new(),
            phase_div: g,
            buf: Vec::new(),
            // Zeros before the start, so the first outputs see a whole window.
            buf_start: 0,
            next: 0,
        };
        if phases <= MAX_TABLED_PHASES {
            let taps = 2 * half as usize;
            r.table = Vec::with_capacity(phases as usize * taps);
            for p in 0..phases {
                let frac = (p * g) as f64 / out_rate as f64;
                for j in 0..taps {
                    // Tap j is input sample (center - half + 1 + j).
                    let t = (j as i64 - half + 1) as f64 - frac;
                    r.table.push(kernel(t, cutoff, half as f64) as f32);
                }
            }
        }
        r
    }

    /// Converts what can be converted of `input` (appended to what came before) into `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) {
        self.buf.extend_from_slice(input);
        self.drain(out, false);
    }

    /// Converts the rest (the input is taken to be followed by silence).
    pub fn finish(&mut self, out: &mut Vec<f32>) {
        self.drain(out, true);
        self.buf.clear();
    }

    fn drain(&mut self, out: &mut Vec<f32>, last: bool) {
        let have_end = self.buf_start + self.buf.len() as i64;
        let taps = 2 * self.half as usize;
        loop {
            let num = self.next * self.in_rate;
            let center = (num / self.out_rate) as i64;
            // The end of the input, at the input rate.
            if last {
                if center >= have_end {
                    break;
                }
            } else if center + self.half >= have_end {
                break;
            }
            let phase_num = num % self.out_rate;
            let first = center - self.half + 1;
            let mut acc = 0.0f32;
            let sample = |i: i64| -> f32 {
                let k = i - self.buf_start;
                if k < 0 || k >= self.buf.len() as i64 {
                    0.0
                } else {
                    self.buf[k as usize]
                }
            };
            if self.table.is_empty() {
                let frac = phase_num as f64 / self.out_rate as f64;
                for j in 0..taps as i64 {
                    let t = (j - self.half + 1) as f64 - frac;
                    acc += sample(first + j) * kernel(t, self.cutoff, self.half as f64) as f32;
                }
            } else {
                let p = (phase_num / self.phase_div) as usize;
                let weights = &self.table[p * taps..(p + 1) * taps];
                let lo = first - self.buf_start;
                if lo >= 0 && lo as usize + taps <= self.buf.len() {
                    let window = &self.buf[lo as usize..lo as usize + taps];
                    acc = window.iter().zip(weights).map(|(a, b)| a * b).sum();
                } else {
                    for (j, w) in weights.iter().enumerate() {
                        acc += sample(first + j as i64) * w;
                    }
                }
            }
            out.push(acc);
            self.next += 1;
        }
        // Keep only what later outputs still need.
        let num = self.next * self.in_rate;
        let center = (num / self.out_rate) as i64;
        let keep_from = center - self.half + 1;
        let drop = (keep_from - self.buf_start).clamp(0, self.buf.len() as i64) as usize;
        if drop > 0 {
            self.buf.drain(..drop);
            self.buf_start += drop as i64;
        }
    }
}

/// The whole of `input` at `in_rate`, converted to `out_rate`.
pub fn resample(input: &[f32], in_rate: u32, out_rate: u32) -> Vec<f32> {
    if in_rate == out_rate {
        return input.to_vec();
    }
    let mut r = Resampler::new(in_rate, out_rate);
    let mut out = Vec::with_capacity(input.len() * out_rate as usize / in_rate.max(1) as usize + 1);
    for chunk in input.chunks(4096) {
        r.push(chunk, &mut out);
    }
    r.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, seconds: f64) -> Vec<f32> {
        (0..(rate as f64 * seconds) as usize)
            .map(|i| {
                (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin() as f32 * 0.5
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f64 {
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len().max(1) as f64).sqrt()
    }

    #[test]
    fn lengths_follow_the_rate_ratio() {
        for (from, to) in [
            (8000, 16000),
            (48000, 16000),
            (44100, 16000),
            (22050, 16000),
            (11025, 16000),
            (7999, 16000),
        ] {
            let out = resample(&tone(440.0, from, 1.0), from, to);
            let want = to as i64;
            assert!(
                (out.len() as i64 - want).abs() <= 2,
                "{from}->{to}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn a_tone_in_the_passband_keeps_its_level_and_frequency() {
        let out = resample(&tone(1000.0, 8000, 1.0), 8000, 16000);
        let mid = &out[2000..14000];
        assert!((rms(mid) - 0.5 / 2f64.sqrt()).abs() < 0.01, "{}", rms(mid));
        // Compare with an ideal 1 kHz tone at 16 kHz (same phase: sample 2k of 16k = 1 s/8).
        let ideal = tone(1000.0, 16000, 1.0);
        let err: f64 = mid
            .iter()
            .zip(&ideal[2000..14000])
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            / mid.len() as f64;
        assert!(err.sqrt() < 0.01, "{}", err.sqrt());
    }

    #[test]
    fn a_tone_above_the_new_nyquist_is_removed_not_aliased() {
        // 10 kHz at 48 kHz would fold to 6 kHz at 16 kHz without the low-pass.
        let out = resample(&tone(10_000.0, 48000, 1.0), 48000, 16000);
        assert!(rms(&out[1000..15000]) < 0.005, "{}", rms(&out[1000..15000]));
    }

    #[test]
    fn chunked_and_whole_input_give_the_same_output() {
        let input = tone(300.0, 44100, 0.5);
        let whole = resample(&input, 44100, 16000);
        let mut r = Resampler::new(44100, 16000);
        let mut out = Vec::new();
        for chunk in input.chunks(77) {
            r.push(chunk, &mut out);
        }
        r.finish(&mut out);
        assert_eq!(out.len(), whole.len());
        assert!(out.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
