//! Digest compilation and rendering alone (issue 7): personalised digests
//! per second on one core, no database work and no SMTP.
//!
//!   cargo bench --bench render -- [N]        (default 100000)
//!
//! Each reader gets their own links (and name, for most), and readers are
//! spread over four sets of topics, so the shared render serves several
//! shapes. Every message is built to the bytes it would send. Prints one
//! Markdown table row (size, median digests/s of five passes, µs each, the
//! slowest and fastest pass); fails unless N messages were built each pass.

use std::time::Instant;

use broadsheet::{
    app::App,
    clock::Clock,
    config::{Config, Secret},
    store::{campaign_articles::CampaignArticle, deliveries::Recipient},
};

fn articles() -> Vec<CampaignArticle> {
    let article = |n: usize, category: &str| CampaignArticle {
        slug: format!("article-{n}"),
        title: format!("The harbour bridge reopens after two years of repairs, part {n}"),
        teaser: "Engineers replaced every cable and most of the deck; the city \
                 expects traffic to return to its old levels by spring."
            .to_owned(),
        author: "Ada Reporter".to_owned(),
        published_at: 0,
        category: category.to_owned(),
    };
    ["City", "Culture", "Science", "City", "Sport", "Culture"]
        .iter()
        .enumerate()
        .map(|(n, category)| article(n, category))
        .collect()
}

fn readers(n: usize) -> Vec<(Recipient, Vec<String>)> {
    let topic_sets: [&[&str]; 4] = [&[], &["City"], &["Culture", "Science"], &["Sport"]];
    (0..n)
        .map(|i| {
            let recipient = Recipient {
                id: uuid::Uuid::now_v7().to_string(),
                email_canonical: format!("reader{i}@example.com"),
                name: (i % 5 != 0).then(|| format!("Reader {i}")),
                eligible: 1,
            };
            let topics = topic_sets[i % topic_sets.len()]
                .iter()
                .map(|t| (*t).to_owned())
                .collect();
            (recipient, topics)
        })
        .collect()
}

// The table row is this program's output.
#[allow(clippy::print_stdout)]
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::args().nth(1).filter(|a| a != "--bench") {
        Some(n) => n.parse()?,
        None => 100_000,
    };
    let dir = tempfile::tempdir()?;
    let mut config = Config::default();
    config.database.url = Secret::new(format!("sqlite://{}/render.db", dir.path().display()));
    config.mail.file_dir = dir.path().join("mail");
    let app = App::build(config, Clock::default()).await?;
    let previews = app.previews();
    let readers = readers(n);

    // Five passes, each a campaign of its own (its shared renders made
    // anew): the median pass is the figure, as this machine's speed varies.
    let mut seconds = Vec::new();
    let mut bytes = 0usize;
    for _ in 0..5 {
        let mut built = 0usize;
        bytes = 0;
        let started = Instant::now();
        previews.render_each(articles(), &readers, |message| {
            built += 1;
            bytes += message.len();
        })?;
        seconds.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(built == n, "built {built} digests for {n} readers");
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[seconds.len() / 2];
    println!(
        "| {n} | {:.0} B | {:.0} | {:.2} µs | {:.0}–{:.0} |",
        bytes as f64 / n as f64,
        n as f64 / median,
        median / n as f64 * 1e6,
        n as f64 / seconds[seconds.len() - 1],
        n as f64 / seconds[0],
    );
    Ok(())
}
