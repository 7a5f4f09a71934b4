//! Redis HyperLogLogs read and merged outside Redis, so unique visitors can be counted across
//! shards: each shard keeps its own HyperLogLog of a day's visitors; a union over shards (and
//! days) is the register-wise maximum of their registers, and its cardinality is Redis's own
//! estimate of that union. The result is exactly what `PFMERGE` and `PFCOUNT` would give if the
//! HyperLogLogs lived on one server (the end-to-end tests compare the two on a real Redis).
//!
//! The format is Redis's (`hyperloglog.c`, stable since Redis 2.8.9): a 16-byte header
//! (`HYLL`, the encoding, 3 unused bytes, 8 bytes of cached cardinality), then 16384 registers
//! of 6 bits, either dense (packed little-endian) or sparse (run-length opcodes `ZERO`, `XZERO`
//! and `VAL`). The estimator is Redis's since 5.0 (Ertl's improved raw estimator).

/// Registers per HyperLogLog (precision 14).
pub const REGISTERS: usize = 1 << 14;
/// Bits of the hash not used to pick a register (64 - 14).
const Q: usize = 50;
/// Bytes of a dense HyperLogLog's registers.
const DENSE_BYTES: usize = REGISTERS * 6 / 8;
/// Header length.
const HEADER: usize = 16;

/// Why bytes are not a Redis HyperLogLog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HllError(pub &'static str);

/// The registers of one or more HyperLogLogs (merged).
#[derive(Clone, PartialEq, Eq)]
pub struct Registers(Box<[u8; REGISTERS]>);

impl std::fmt::Debug for Registers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Registers({} set)",
            self.0.iter().filter(|r| **r > 0).count()
        )
    }
}

impl Default for Registers {
    fn default() -> Self {
        Registers(Box::new([0; REGISTERS]))
    }
}

impl Registers {
    /// The registers of a HyperLogLog as Redis stores it (the string `GET` returns).
    pub fn decode(bytes: &[u8]) -> Result<Self, HllError> {
        let mut registers = Registers::default();
        registers.merge_bytes(bytes)?;
        Ok(registers)
    }

    /// Merges a stored HyperLogLog into these registers (register-wise maximum, as `PFMERGE`).
    pub fn merge_bytes(&mut self, bytes: &[u8]) -> Result<(), HllError> {
        if bytes.len() < HEADER || &bytes[..4] != b"HYLL" {
            return Err(HllError("not a HyperLogLog"));
        }
        let data = &bytes[HEADER..];
        match bytes[4] {
            0 => self.merge_dense(data),
            1 => self.merge_sparse(data),
            _ => Err(HllError("unknown HyperLogLog encoding")),
        }
    }

    /// Merges other registers into these.
    pub fn merge(&mut self, other: &Registers) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            *mine = (*mine).max(*theirs);
        }
    }

    fn merge_dense(&mut self, data: &[u8]) -> Result<(), HllError> {
        if data.len() != DENSE_BYTES {
            return Err(HllError("dense HyperLogLog of the wrong length"));
        }
        for (index, register) in self.0.iter_mut().enumerate() {
            let bit = index * 6;
            let (byte, shift) = (bit / 8, bit % 8);
            let low = u16::from(data[byte]);
            let high = u16::from(*data.get(byte + 1).unwrap_or(&0));
            let value = (((low | (high << 8)) >> shift) & 63) as u8;
            *register = (*register).max(value);
        }
        Ok(())
    }

    fn merge_sparse(&mut self, data: &[u8]) -> Result<(), HllError> {
        let mut index = 0usize;
        let mut at = 0usize;
        while at < data.len() {
            let op = data[at];
            let (run, value, width) = if op & 0xc0 == 0 {
                // ZERO: 00xxxxxx, a run of 1 to 64 empty registers.
                (usize::from(op & 0x3f) + 1, 0, 1)
            } else if op & 0xc0 == 0x40 {
                // XZERO: 01xxxxxx yyyyyyyy, a run of 1 to 16384 empty registers.
                let next = *data
                    .get(at + 1)
                    .ok_or(HllError("truncated sparse HyperLogLog"))?;
                ((usize::from(op & 0x3f) << 8 | usize::from(next)) + 1, 0, 2)
            } else {
                // VAL: 1vvvvvxx, a run of 1 to 4 registers set to 1 to 32.
                (usize::from(op & 0x03) + 1, ((op >> 2) & 0x1f) + 1, 1)
            };
            if index + run > REGISTERS {
                return Err(HllError("sparse HyperLogLog longer than its registers"));
            }
            if value > 0 {
                for register in &mut self.0[index..index + run] {
                    *register = (*register).max(value);
                }
            }
            index += run;
            at += width;
        }
        if index != REGISTERS {
            return Err(HllError("sparse HyperLogLog shorter than its registers"));
        }
        Ok(())
    }

    /// The estimated number of distinct elements, computed as Redis's `PFCOUNT` does.
    pub fn count(&self) -> u64 {
        let mut histogram = [0u32; 64];
        for &register in self.0.iter() {
            histogram[usize::from(register)] += 1;
        }
        let m = REGISTERS as f64;
        let mut z = m * tau((m - f64::from(histogram[Q + 1])) / m);
        for j in (1..=Q).rev() {
            z += f64::from(histogram[j]);
            z *= 0.5;
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
        (ALPHA_INF * m * m / z).round() as u64
    }
}

/// Ertl's sigma function, as Redis computes it.
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

/// Ertl's tau function, as Redis computes it.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

/// The union's cardinality of stored HyperLogLogs (absent ones, `None`, are empty).
pub fn union_count<'a>(
    stored: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<u64, HllError> {
    let mut registers = Registers::default();
    for bytes in stored.into_iter().flatten() {
        registers.merge_bytes(bytes)?;
    }
    Ok(registers.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(encoding: u8) -> Vec<u8> {
        let mut h = b"HYLL".to_vec();
        h.push(encoding);
        h.extend([0; 11]);
        h
    }

    #[test]
    fn an_empty_sparse_hll_counts_zero() {
        // What `PFADD k` (no element) stores: one XZERO covering every register.
        let mut bytes = header(1);
        bytes.extend([0x7f, 0xff]);
        let registers = Registers::decode(&bytes).unwrap();
        assert_eq!(registers, Registers::default());
        assert_eq!(registers.count(), 0);
    }

    #[test]
    fn sparse_runs_set_the_registers_they_name() {
        // Register 0 = 3 (VAL 1 reg of value 3), then 16383 zeros (XZERO).
        let mut bytes = header(1);
        bytes.push(0x80 | (2 << 2));
        bytes.extend([0x40 | 0x3f, 0xfe]);
        let registers = Registers::decode(&bytes).unwrap();
        assert_eq!(registers.0[0], 3);
        assert!(registers.0[1..].iter().all(|r| *r == 0));
        assert_eq!(registers.count(), 1);
    }

    #[test]
    fn dense_registers_are_six_bits_little_endian() {
        let mut bytes = header(0);
        let mut data = vec![0u8; DENSE_BYTES];
        // Register 1 (bits 6..12) = 0b101011 = 43.
        data[0] = 0b1100_0000;
        data[1] = 0b0000_1010;
        bytes.extend(data);
        let registers = Registers::decode(&bytes).unwrap();
        assert_eq!(registers.0[1], 43);
        assert_eq!(registers.0[0], 0);
        assert_eq!(registers.0[2], 0);
    }

    #[test]
    fn merging_takes_the_maximum_of_each_register() {
        let mut a = Registers::default();
        a.0[5] = 2;
        let mut b = Registers::default();
        b.0[5] = 7;
        b.0[6] = 1;
        a.merge(&b);
        assert_eq!((a.0[5], a.0[6]), (7, 1));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"HYLX\0\0\0\0\0\0\0\0\0\0\0\0",
            b"HYLL\x07\0\0\0\0\0\0\0\0\0\0\0",
            b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0\x40",
        ] {
            assert!(Registers::decode(bad).is_err(), "{bad:?}");
        }
        let mut short_dense = header(0);
        short_dense.extend([0; 10]);
        assert!(Registers::decode(&short_dense).is_err());
        let mut too_long = header(1);
        too_long.extend([0x7f, 0xff, 0x00]);
        assert!(Registers::decode(&too_long).is_err());
    }
}
