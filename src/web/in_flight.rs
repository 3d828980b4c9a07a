//! Requests in flight per client network: past `server.max_in_flight_per_client`
//! a client's next request is answered 429 at once, before its body is read
//! or the database asked. A client that fires requests without waiting for
//! the answers (and hangs up) otherwise has the server hold thousands at
//! once, each with its body, queued for the database pool every other
//! reader waits on too (bench/hashflood.sh on SQLite, 29,000 requests in
//! 10 s: resident memory 63 → 429 MiB, another reader's sign-in 1.9 s).
//! The middleware is `guards::limit_in_flight`.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
};

pub struct InFlight {
    per_client: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// A request's place among its network's; given back when dropped.
pub struct Ticket {
    in_flight: Arc<InFlight>,
    network: IpAddr,
}

impl InFlight {
    /// `None` (no limit) for 0.
    pub fn new(per_client: u32) -> Option<Arc<Self>> {
        (per_client > 0).then(|| {
            Arc::new(Self {
                per_client: per_client as usize,
                counts: Mutex::new(HashMap::new()),
            })
        })
    }

    /// A place for one more request of `network`, if it has one left.
    pub fn enter(self: &Arc<Self>, network: IpAddr) -> Option<Ticket> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(network).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Ticket {
            in_flight: self.clone(),
            network,
        })
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut counts = self
            .in_flight
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Networks with nothing in flight are forgotten: the table holds
        // only the clients being served now.
        if let Some(count) = counts.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.network);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_has_its_share_and_gets_it_back() {
        let in_flight = InFlight::new(2).expect("a limit");
        let (flooder, other): (IpAddr, IpAddr) =
            ("2001:db8::".parse().unwrap(), "192.0.2.1".parse().unwrap());
        let first = in_flight.enter(flooder).expect("one");
        let second = in_flight.enter(flooder).expect("two");
        assert!(
            in_flight.enter(flooder).is_none(),
            "the third waits for an answer"
        );
        assert!(
            in_flight.enter(other).is_some(),
            "another network is served"
        );
        drop(first);
        let third = in_flight.enter(flooder).expect("a place came back");
        drop((second, third));
        assert!(
            in_flight.counts.lock().unwrap().is_empty(),
            "nothing kept for idle networks"
        );
        assert!(InFlight::new(0).is_none());
    }
}
