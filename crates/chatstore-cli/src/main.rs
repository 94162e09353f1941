//! `chatstore`: the command line of CONTRACT §6.
#![forbid(unsafe_code)]

mod cli;
mod commands;
mod error;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc: sled allocates per key and the system allocator cost about a
/// quarter of the write path's cycles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A panic must never reach the user as a backtrace: one line, exit 70.
    std::panic::set_hook(Box::new(|info| {
        let msg = chatstore::panic_message(info.payload());
        let _ = writeln!(std::io::stderr(), "chatstore: internal error: {msg}");
    }));
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let _ = writeln!(
                std::io::stderr(),
                "chatstore: {first} (see chatstore --help)"
            );
            return ExitCode::from(2);
        }
    };
    match std::panic::catch_unwind(|| commands::run(args)) {
        Ok(Ok(code)) => code,
        // A reader that went away (`chatstore export | head`) is not an error.
        Ok(Err(e)) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            let _ = writeln!(std::io::stderr(), "chatstore: {e}");
            ExitCode::from(1)
        }
        Err(_) => ExitCode::from(70),
    }
}
