use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match broadsheet::cli::Cli::parse().run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("broadsheet: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
