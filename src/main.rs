//! The `authprobe` binary: parse flags, hand them to the library, exit with its code.

fn main() -> std::process::ExitCode {
    authprobe::cli::main()
}
