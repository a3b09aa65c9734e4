//! The `gms` binary: all work happens in the library; see `gms::cli`.

fn main() -> std::process::ExitCode {
    // A reader that stops early (`gms report … | head`) ends the process quietly, as it does
    // other command-line tools, instead of a panic in `println!` on the broken pipe. Rust
    // ignores SIGPIPE by default; this restores the default action before anything is printed.
    #[cfg(unix)]
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    gms::cli::main()
}
