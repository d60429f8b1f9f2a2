//! The `authprobe` binary: parse flags, hand them to the library, exit with its code.

// mimalloc for the static musl builds: musl's allocator made their emulator 1.3–2× slower per
// connect than the glibc build. Not for glibc: there mimalloc saved a tenth of the CPU per connect
// but doubled the memory per held connection (docs/performance.md).
#[cfg(target_env = "musl")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    authprobe::cli::main()
}
