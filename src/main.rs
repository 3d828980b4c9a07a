use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match Box::pin(broadsheet::cli::Cli::parse().run()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("broadsheet: {}", broadsheet::telemetry::error_text(&error));
            std::process::ExitCode::FAILURE
        }
    }
}
