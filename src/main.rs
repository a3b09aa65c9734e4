//! The `gms` binary: all work happens in the library; see `gms::cli`.

fn main() -> std::process::ExitCode {
    gms::cli::main()
}
