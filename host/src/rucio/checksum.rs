//! The checksums Rucio registers with a file: its size, Adler-32 and MD5.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};

/// A file's size and checksums, as Rucio records them (lowercase hex).
#[derive(Debug, PartialEq, Eq)]
pub struct Checksums {
    pub bytes: u64,
    pub adler32: String,
    pub md5: String,
}

/// Adler-32 (RFC 1950), fed a piece at a time.
struct Adler32 {
    a: u32,
    b: u32,
}

impl Adler32 {
    fn new() -> Self {
        Adler32 { a: 1, b: 0 }
    }

    fn update(&mut self, data: &[u8]) {
        // 5552 bytes is the most before the sums can overflow.
        for chunk in data.chunks(5552) {
            for &byte in chunk {
                self.a += u32::from(byte);
                self.b += self.a;
            }
            self.a %= 65_521;
            self.b %= 65_521;
        }
    }

    fn hex(&self) -> String {
        format!("{:08x}", (self.b << 16) | self.a)
    }
}

/// Size, Adler-32 and MD5 of a file, in one pass.
pub fn of_file(path: &Path) -> Result<Checksums> {
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut adler = Adler32::new();
    let mut md5 = md5_many::Md5State::new();
    let mut bytes = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        md5.update(&buf[..n]);
        adler.update(&buf[..n]);
        bytes += n as u64;
    }
    let md5: String = md5.finalize().iter().map(|x| format!("{x:02x}")).collect();
    Ok(Checksums { bytes, adler32: adler.hex(), md5 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adler32_and_md5_of_known_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w");
        std::fs::write(&file, "Wikipedia").unwrap();
        let expected = Checksums { bytes: 9, adler32: "11e60398".into(), md5: "9c677286866aad38f8e9b660f5411814".into() };
        assert_eq!(of_file(&file).unwrap(), expected);
        // Past the 5552 bytes after which the sums are reduced (value from zlib).
        std::fs::write(&file, vec![0xffu8; 1 << 20]).unwrap();
        assert_eq!(of_file(&file).unwrap().adler32, "8e88ef11");
    }
}
