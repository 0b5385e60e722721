//! The `jwks` command line. One file per command; shared pieces beside them.
//!
//! | file | role |
//! |---|---|
//! | `args.rs` | the clap declaration: commands, flags, help texts |
//! | `exit.rs` | exit codes and the one-line failure |
//! | `flags.rs` | library setting names in messages → the CLI's flags |
//! | `source.rs` | `<url\|file>` and the common flags to a `Builder` |
//! | `inspect.rs`, `verify.rs`, `watch.rs` | the operator commands |
//! | `demo.rs` (+ `demo/`) | the self-contained demo |
//! | `text.rs` | tables and durations for humans |

mod args;
mod demo;
mod exit;
mod flags;
mod inspect;
mod source;
mod text;
mod verify;
mod watch;

use clap::Parser as _;

use args::{Cli, Command};
use exit::{Failure, OK, USAGE};

/// Parses the arguments, runs the command, prints a failure as one line on
/// stderr, and returns the exit code.
pub(crate) fn run() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return argument_error(&e),
    };
    match dispatch(cli.command) {
        Ok(()) => OK,
        Err(Failure { code, message }) => {
            eprintln!("jwks: {message}");
            code
        }
    }
}

fn dispatch(command: Command) -> exit::Outcome {
    match command {
        Command::Inspect {
            source,
            issuer,
            json,
            http,
            refresh,
        } => {
            let source = source::Source::from_args(source.as_deref(), issuer.as_deref())?;
            inspect::run(&source, json, &http, &refresh)
        }
        Command::Verify {
            jwks,
            issuer,
            mut issuers,
            audiences,
            any_aud,
            leeway,
            wait,
            token,
            http,
        } => {
            let source = source::Source::from_args(jwks.as_deref(), issuer.as_deref())?;
            if let (Some(issuer), true) = (&issuer, issuers.is_empty()) {
                // Keys discovered from an issuer verify that issuer's tokens.
                issuers.push(issuer.clone());
            }
            let rules = verify::Rules {
                issuers: &issuers,
                audiences: &audiences,
                any_aud,
                leeway,
            };
            verify::run(&source, &token, &rules, wait, &http)
        }
        Command::Watch {
            source,
            issuer,
            json,
            http,
            refresh,
        } => {
            let source = source::Source::from_args(source.as_deref(), issuer.as_deref())?;
            watch::run(&source, json, &http, &refresh)
        }
        Command::Demo {
            duration,
            threads,
            json,
            tenants: None,
        } => demo::run(&demo::Settings::new(duration, threads, json)),
        Command::Demo {
            duration,
            threads,
            json,
            tenants: Some(tenants),
        } => demo::tenants::run(&demo::tenants::Settings::new(
            duration, threads, tenants, json,
        )),
    }
}

/// `--help` and `--version` print and succeed; a missing argument or
/// subcommand prints clap's whole message (it lists what is missing); any
/// other argument error is reported as clap's first line plus a pointer to
/// `--help`. Argument errors exit 64.
fn argument_error(e: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{e}");
            OK
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        | ErrorKind::MissingRequiredArgument
        | ErrorKind::MissingSubcommand => {
            eprint!("{e}");
            USAGE
        }
        _ => {
            let rendered = e.to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("jwks: {first} (see jwks --help)");
            USAGE
        }
    }
}
