use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Box::pin(broadsheet::cli::Cli::parse().run()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("broadsheet: {}", error_text(&error));
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error and its causes, joined by ": ", each said once: some errors
/// (sqlx's, io's) already end with their cause's text, which `{:#}` would
/// print again.
fn error_text(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}
