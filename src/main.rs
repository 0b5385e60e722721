//! `jwks`: inspect, verify against and watch JSON Web Key Sets, and run the
//! jwks-sync demo. Built with `--features cli`; see `jwks --help` and the README.

mod cli;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::run())
}
