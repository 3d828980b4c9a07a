//! Sending one message with SMTP PIPELINING (RFC 2920) on a lettre
//! connection: MAIL, every RCPT and DATA go in one write and their
//! replies are read together; the message and its end-of-data marker go
//! in a second write. lettre's own `send` writes and waits five times
//! (MAIL, RCPT, DATA, the message, the marker), which kept the kernel
//! and the relay busy with one small packet and wake-up each.
//!
//! Without PIPELINING the same commands go one at a time. Either way the
//! caller learns whether the message's body had been written when a send
//! failed: a connection lost before it left the message with us, one lost
//! after it may not have.
//!
//! lettre stays in charge of everything else: the greeting, EHLO,
//! STARTTLS, AUTH, the commands' syntax and the replies' parsing. Its
//! `command` writes a text in one go and reads one reply; here the text is
//! several commands, and the replies after the first are read with
//! `read_response`. CHUNKING (RFC 3030) is not used: the relays measured
//! here (postfix's `smtp-sink`) do not offer it.

use std::fmt::{self, Display, Write as _};

use lettre::{
    address::Envelope,
    transport::smtp::{
        Error,
        client::AsyncSmtpConnection,
        commands::{Data, Mail, Rcpt},
        extension::{Extension, MailBodyParameter, MailParameter},
    },
};

/// A failed send, and whether the whole message had been written when
/// it failed: the server may then have taken it, unless it said otherwise.
pub(super) struct Failed {
    pub error: Error,
    pub body_sent: bool,
}

/// Sends `body` to `envelope`'s recipients: pipelined (MAIL, every RCPT
/// and DATA in one write) where the server offers it, else one command
/// per reply. A refusal at any step, or a dropped connection, is the error
/// of the first reply that is not positive, as with lettre's `send`, and
/// the connection is closed (the pool makes a new one). Where the envelope
/// needs an extension the server lacks, lettre's `send` is used, for its
/// own error (given before anything is sent).
pub(super) async fn send(
    connection: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
    pipelining: bool,
) -> Result<(), Failed> {
    let (Some(parameters), Ok(text)) = (
        mail_parameters(connection, envelope, body),
        str::from_utf8(body),
    ) else {
        return connection
            .send(envelope, body)
            .await
            .map(drop)
            .map_err(|error| Failed {
                error,
                body_sent: false,
            });
    };
    let mail = Mail::new(envelope.from().cloned(), parameters);
    let envelope_sent = if pipelining {
        let mut commands = mail.to_string();
        for recipient in envelope.to() {
            let _ = write!(commands, "{}", Rcpt::new(recipient.clone(), Vec::new()));
        }
        let _ = write!(commands, "{Data}");
        pipelined_envelope(connection, commands, envelope.to().len()).await
    } else {
        stepwise_envelope(connection, mail, envelope).await
    };
    let result = match envelope_sent {
        Ok(()) => connection
            .command(DotStuffed(text))
            .await
            .map(drop)
            .map_err(|error| Failed {
                error,
                body_sent: true,
            }),
        Err(error) => Err(Failed {
            error,
            body_sent: false,
        }),
    };
    if result.is_err() {
        // The replies still owed are never read: QUIT and close.
        connection.abort().await;
    }
    result
}

/// MAIL, the RCPTs and DATA written at once; their replies read together.
async fn pipelined_envelope(
    connection: &mut AsyncSmtpConnection,
    commands: String,
    recipients: usize,
) -> Result<(), Error> {
    connection.command(commands).await?; // MAIL's reply
    for _ in 0..recipients {
        connection.read_response().await?;
    }
    connection.read_response().await?; // DATA's 354
    Ok(())
}

/// MAIL, each RCPT and DATA, each waiting for its reply.
async fn stepwise_envelope(
    connection: &mut AsyncSmtpConnection,
    mail: Mail,
    envelope: &Envelope,
) -> Result<(), Error> {
    connection.command(mail).await?;
    for recipient in envelope.to() {
        connection
            .command(Rcpt::new(recipient.clone(), Vec::new()))
            .await?;
    }
    connection.command(Data).await?;
    Ok(())
}

/// The MAIL parameters lettre's `send` would give, or `None` where it
/// would refuse to send: non-ASCII addresses without SMTPUTF8 (RFC 6531),
/// a non-ASCII body without 8BITMIME (RFC 6152).
fn mail_parameters(
    connection: &AsyncSmtpConnection,
    envelope: &Envelope,
    body: &[u8],
) -> Option<Vec<MailParameter>> {
    let offers = |extension| connection.server_info().supports_feature(extension);
    let mut parameters = Vec::new();
    let addresses_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|address| AsRef::<str>::as_ref(address).is_ascii());
    if !addresses_ascii {
        offers(Extension::SmtpUtfEight).then_some(())?;
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !body.is_ascii() {
        offers(Extension::EightBitMime).then_some(())?;
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Some(parameters)
}

/// A message as DATA carries it (RFC 5321 §4.5.2): a line that starts
/// with a dot gets a second one, and a line with a lone dot ends it. The
/// end is written as lettre writes it, after the message's own last line.
struct DotStuffed<'a>(&'a str);

impl Display for DotStuffed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.0.split_inclusive("\r\n") {
            if line.starts_with('.') {
                f.write_char('.')?;
            }
            f.write_str(line)?;
        }
        f.write_str("\r\n.\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::DotStuffed;

    #[test]
    fn lines_starting_with_a_dot_are_doubled_and_the_end_is_marked() {
        let message = ".first\r\nmiddle.\r\n.\r\n..two\r\nlast";
        assert_eq!(
            DotStuffed(message).to_string(),
            "..first\r\nmiddle.\r\n..\r\n...two\r\nlast\r\n.\r\n"
        );
    }
}
