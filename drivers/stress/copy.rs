//! `copy SRC DST`: copies a whole file with copy_file_range through glibc's symbol and prints
//! `copied N` (or `errno E`).

use std::path::Path;

use crate::calls::{Entry, cfr};
use crate::tools::open;
use crate::usage;

pub(crate) fn cmd_copy(args: &[String]) {
    let [src, dst] = args else { usage() };
    let fd_in = open(Path::new(src), libc::O_RDONLY);
    let fd_out = open(
        Path::new(dst),
        libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
    );
    let mut total = 0usize;
    loop {
        let (r, e) = cfr(Entry::Libc, fd_in, None, fd_out, None, 1 << 20, 0);
        if r < 0 {
            println!("errno {e}");
            std::process::exit(1);
        }
        if r == 0 {
            break;
        }
        total += r as usize;
    }
    println!("copied {total}");
}
