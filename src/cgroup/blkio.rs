//! `linux.resources.blockIO` → v1 `blkio.*` or v2 `io.*` files, as runc's fs and fs2
//! drivers write them: weights 0 mean "not set"; v1 picks `blkio.weight` when the kernel
//! has it (CFQ) and `blkio.bfq.weight` otherwise; v2 writes `io.bfq.weight` when BFQ is
//! there and otherwise `io.weight` with runc's 10..1000 → 1..10000 conversion.

use std::path::Path;

use super::layout::Ctrl;
use super::{Cgroup, Error};
use crate::spec::{BlockIo, ThrottleDevice};

pub(super) const FIELD: &str = "linux.resources.blockIO";
/// The spec's (and the v1 kernel's) weight range; 0 means "not set".
pub(super) const WEIGHT_MIN: u16 = 10;
pub(super) const WEIGHT_MAX: u16 = 1000;
/// Largest device major and minor the kernel encodes (12 and 20 bits).
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// The four throttle lists with their JSON name, v1 file and v2 `io.max` key.
fn throttles(b: &BlockIo) -> [(&'static str, &'static str, &'static str, &[ThrottleDevice]); 4] {
    [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
            &b.throttle_read_bps_device,
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
            &b.throttle_write_bps_device,
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
            &b.throttle_read_iops_device,
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
            &b.throttle_write_iops_device,
        ),
    ]
}

/// Whether any field asks for a write (runc: weights of 0 and empty lists do not).
pub(super) fn is_set(b: &BlockIo) -> bool {
    b.weight.is_some_and(|w| w != 0)
        || b.leaf_weight.is_some_and(|w| w != 0)
        || !b.weight_device.is_empty()
        || throttles(b).iter().any(|t| !t.3.is_empty())
}

/// Pure checks: weight ranges, device numbers, and what v2 cannot take.
pub(super) fn check(b: &BlockIo, v2: bool) -> Result<(), Error> {
    weight(b.weight, &format!("{FIELD}.weight"))?;
    weight(b.leaf_weight, &format!("{FIELD}.leafWeight"))?;
    no_leaf_on_v2(b.leaf_weight, v2, &format!("{FIELD}.leafWeight"))?;
    for (i, d) in b.weight_device.iter().enumerate() {
        let at = format!("{FIELD}.weightDevice[{i}]");
        device(d.major, d.minor, &at)?;
        weight(d.weight, &format!("{at}.weight"))?;
        weight(d.leaf_weight, &format!("{at}.leafWeight"))?;
        no_leaf_on_v2(d.leaf_weight, v2, &format!("{at}.leafWeight"))?;
    }
    for (name, _, _, list) in throttles(b) {
        for (i, d) in list.iter().enumerate() {
            device(d.major, d.minor, &format!("{FIELD}.{name}[{i}]"))?;
        }
    }
    Ok(())
}

fn weight(w: Option<u16>, field: &str) -> Result<(), Error> {
    match w {
        Some(w) if w != 0 && !(WEIGHT_MIN..=WEIGHT_MAX).contains(&w) => Err(Error::Invalid {
            field: field.to_owned(),
            why: "must be 10 to 1000 (limits; 0 means not set)",
        }),
        _ => Ok(()),
    }
}

fn no_leaf_on_v2(w: Option<u16>, v2: bool, field: &str) -> Result<(), Error> {
    if v2 && w.is_some_and(|w| w != 0) {
        return Err(Error::Unsupported {
            field: field.to_owned(),
            why: "cgroup v2 has no leaf weight",
        });
    }
    Ok(())
}

fn device(major: i64, minor: i64, field: &str) -> Result<(), Error> {
    let bad = |why| {
        Err(Error::Invalid {
            field: field.to_owned(),
            why,
        })
    };
    if !(0..=MAX_MAJOR).contains(&major) {
        return bad("major must be 0 to 4095 (limit)");
    }
    if !(0..=MAX_MINOR).contains(&minor) {
        return bad("minor must be 0 to 1048575 (limit)");
    }
    Ok(())
}

/// cgroup v1 blkio weight [10, 1000] → v2 `io.weight` [1, 10000], runc's formula.
pub(super) fn weight_to_v2(w: u16) -> u64 {
    let w = u64::from(w.clamp(WEIGHT_MIN, WEIGHT_MAX));
    1 + (w - u64::from(WEIGHT_MIN)) * 9999 / 990
}

impl Cgroup {
    /// Writes the set fields of `b` (checked by [`check`]).
    pub(super) fn apply_block_io(&self, b: &BlockIo) -> Result<(), Error> {
        if !is_set(b) {
            return Ok(());
        }
        let dir = self.dir_for(Ctrl::Blkio, FIELD)?;
        if self.v2 {
            self.apply_io_v2(dir, b)
        } else {
            self.apply_blkio_v1(dir, b)
        }
    }

    fn apply_blkio_v1(&self, dir: &Path, b: &BlockIo) -> Result<(), Error> {
        // CFQ's files when the kernel has them (before 5.0), BFQ's otherwise, as runc.
        let (weight_file, device_file) = if dir.join("blkio.weight").exists() {
            ("blkio.weight", "blkio.weight_device")
        } else {
            ("blkio.bfq.weight", "blkio.bfq.weight_device")
        };
        if let Some(w) = b.weight.filter(|&w| w != 0) {
            let field = format!("{FIELD}.weight");
            self.put(&field, dir, weight_file, format_args!("{w}"))?;
        }
        if let Some(w) = b.leaf_weight.filter(|&w| w != 0) {
            let field = format!("{FIELD}.leafWeight");
            self.put(&field, dir, "blkio.leaf_weight", format_args!("{w}"))?;
        }
        for (i, d) in b.weight_device.iter().enumerate() {
            let at = format!("{FIELD}.weightDevice[{i}]");
            if let Some(w) = d.weight.filter(|&w| w != 0) {
                let (ma, mi) = (d.major, d.minor);
                self.put(&at, dir, device_file, format_args!("{ma}:{mi} {w}"))?;
            }
            if let Some(w) = d.leaf_weight.filter(|&w| w != 0) {
                let (ma, mi) = (d.major, d.minor);
                let file = "blkio.leaf_weight_device";
                self.put(&at, dir, file, format_args!("{ma}:{mi} {w}"))?;
            }
        }
        for (name, file, _, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                let at = format!("{FIELD}.{name}[{i}]");
                let (ma, mi, r) = (d.major, d.minor, d.rate);
                self.put(&at, dir, file, format_args!("{ma}:{mi} {r}"))?;
            }
        }
        Ok(())
    }

    fn apply_io_v2(&self, dir: &Path, b: &BlockIo) -> Result<(), Error> {
        // BFQ takes the spec's weights as they are; without it io.weight (iocost) takes
        // a converted one.
        let bfq = dir.join("io.bfq.weight").exists();
        if let Some(w) = b.weight.filter(|&w| w != 0) {
            let field = format!("{FIELD}.weight");
            if bfq {
                self.put(&field, dir, "io.bfq.weight", format_args!("{w}"))?;
            } else {
                let v = weight_to_v2(w);
                self.put(&field, dir, "io.weight", format_args!("{v}"))?;
            }
        }
        for (i, d) in b.weight_device.iter().enumerate() {
            let at = format!("{FIELD}.weightDevice[{i}]");
            let Some(w) = d.weight.filter(|&w| w != 0) else {
                continue;
            };
            let (ma, mi) = (d.major, d.minor);
            if bfq {
                self.put(&at, dir, "io.bfq.weight", format_args!("{ma}:{mi} {w}"))?;
            } else {
                let v = weight_to_v2(w);
                self.put(&at, dir, "io.weight", format_args!("{ma}:{mi} {v}"))?;
            }
        }
        for (name, _, key, list) in throttles(b) {
            for (i, d) in list.iter().enumerate() {
                let at = format!("{FIELD}.{name}[{i}]");
                let (ma, mi, r) = (d.major, d.minor, d.rate);
                self.put(&at, dir, "io.max", format_args!("{ma}:{mi} {key}={r}"))?;
            }
        }
        Ok(())
    }
}
