//! The `onedb` binary: argument parsing lives in the library's `cli`.

fn main() -> std::process::ExitCode {
    onedb::cli::main()
}
