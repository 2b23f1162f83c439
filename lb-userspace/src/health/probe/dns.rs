//! dns probes: one query over UDP, answered NOERROR with a record.

use std::net::SocketAddr;

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
};

use super::{failure::Failure, udp};
use crate::config::health::{DnsCheck, DnsRecordType};

/// Up when the real answers a query for `name` with a record of the type.
pub(super) async fn probe(check: &DnsCheck, target: SocketAddr) -> Result<(), Failure> {
    // A random id, so that a late answer to an earlier probe is not taken
    // for this one's.
    let id = fastrand::u16(..);
    let query = encode_query(check, id)?;
    let socket = udp::connected_socket(target).await?;
    let reply = udp::exchange(&socket, &query).await?;
    check_reply(&reply, id, check.record_type)
}

/// The query as sent: recursion desired, as a stub resolver asks, so a
/// recursive resolver is tested on resolving rather than on its cache.
fn encode_query(check: &DnsCheck, id: u16) -> Result<Vec<u8>, Failure> {
    let mut name = Name::from_str_relaxed(&check.name)
        .map_err(|error| Failure::Config(format!("invalid DNS name {:?}: {error}", check.name)))?;
    // Asked directly of the server: there is no search list to apply.
    name.set_fqdn(true);
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name, record_type(check.record_type)));
    message
        .to_vec()
        .map_err(|error| Failure::Config(format!("cannot encode a DNS query: {error}")))
}

/// Checks that `reply` answers our query with at least one record of
/// `wanted` (an A query answered by a CNAME alone is not an A record).
fn check_reply(reply: &[u8], id: u16, wanted: DnsRecordType) -> Result<(), Failure> {
    let message = Message::from_vec(reply)
        .map_err(|error| Failure::BadReply(format!("bad DNS reply: {error}")))?;
    let metadata = &message.metadata;
    if metadata.message_type != MessageType::Response || metadata.id != id {
        return Err(Failure::BadReply(format!(
            "DNS reply with id {} does not answer query {id}",
            metadata.id
        )));
    }
    let rcode = u16::from(metadata.response_code);
    if rcode != 0 {
        return Err(Failure::DnsRcode(rcode));
    }
    let wanted_code = record_type(wanted);
    if message
        .answers
        .iter()
        .any(|record| record.record_type() == wanted_code)
    {
        Ok(())
    } else {
        Err(Failure::NoRecord(wanted))
    }
}

fn record_type(record_type: DnsRecordType) -> RecordType {
    RecordType::from(record_type.code())
}

#[cfg(test)]
mod tests {
    use std::{
        net::{IpAddr, Ipv4Addr, Ipv6Addr},
        time::Duration,
    };

    use hickory_proto::{
        op::ResponseCode,
        rr::{RData, Record, rdata::A},
    };
    use tokio::net::UdpSocket;

    use super::*;
    use crate::{config::health::Probe, health::probe::Prober};

    const TIMEOUT: Duration = Duration::from_secs(2);

    /// How the test server answers.
    #[derive(Clone, Copy)]
    enum Answer {
        /// NOERROR with an A record for the name asked.
        Address,
        /// NOERROR with no records.
        Empty,
        ServFail,
        /// A NOERROR answer with an A record, but to another query id.
        WrongId,
    }

    /// A DNS server on `ip` answering every query as `answer` says.
    async fn server(ip: IpAddr, answer: Answer) -> SocketAddr {
        let socket = UdpSocket::bind((ip, 0)).await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = [0; 512];
            while let Ok((length, peer)) = socket.recv_from(&mut buffer).await {
                let query = Message::from_vec(&buffer[..length]).unwrap();
                let reply = respond(&query, answer).to_vec().unwrap();
                let _ = socket.send_to(&reply, peer).await;
            }
        });
        address
    }

    fn respond(query: &Message, answer: Answer) -> Message {
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.add_queries(query.queries.clone());
        let name = query.queries[0].name().clone();
        let address = Record::from_rdata(name, 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 7))));
        match answer {
            Answer::Address => {
                reply.add_answer(address);
            }
            Answer::Empty => {}
            Answer::ServFail => {
                reply.metadata.response_code = ResponseCode::ServFail;
            }
            Answer::WrongId => {
                reply.metadata.id = query.metadata.id.wrapping_add(1);
                reply.add_answer(address);
            }
        }
        reply
    }

    fn dns(name: &str, record_type: DnsRecordType) -> Probe {
        Probe::Dns(DnsCheck {
            name: name.into(),
            record_type,
        })
    }

    async fn run(probe: &Probe, target: SocketAddr) -> Result<(), Failure> {
        Prober::new(1).probe(probe, target, TIMEOUT).await
    }

    /// How a probe for `www.example.com` fails against a server on
    /// localhost answering as `answer` says.
    async fn failure_of(answer: Answer, record_type: DnsRecordType) -> Failure {
        let target = server(Ipv4Addr::LOCALHOST.into(), answer).await;
        let probe = dns("www.example.com", record_type);
        run(&probe, target).await.unwrap_err()
    }

    #[tokio::test]
    async fn an_answer_with_the_record_is_up() {
        for ip in [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()] {
            let target = server(ip, Answer::Address).await;
            let result = run(&dns("www.example.com", DnsRecordType::A), target).await;
            assert_eq!(result, Ok(()), "{target}");
        }
    }

    #[tokio::test]
    async fn servfail_is_down() {
        let failure = failure_of(Answer::ServFail, DnsRecordType::A).await;
        assert_eq!(failure, Failure::DnsRcode(2));
        assert_eq!(failure.to_string(), "DNS answer SERVFAIL");
    }

    #[tokio::test]
    async fn an_empty_answer_is_down() {
        let failure = failure_of(Answer::Empty, DnsRecordType::A).await;
        assert_eq!(failure, Failure::NoRecord(DnsRecordType::A));
        assert_eq!(failure.to_string(), "no A record in the answer");
    }

    #[tokio::test]
    async fn records_of_another_type_do_not_count() {
        let failure = failure_of(Answer::Address, DnsRecordType::Aaaa).await;
        assert_eq!(failure.to_string(), "no AAAA record in the answer");
    }

    #[tokio::test]
    async fn an_answer_to_another_query_is_a_bad_reply() {
        let failure = failure_of(Answer::WrongId, DnsRecordType::A).await;
        assert_eq!(failure.kind(), "bad_reply", "{failure}");
    }

    #[test]
    fn the_query_asks_recursively_for_the_absolute_name() {
        let check = DnsCheck {
            name: "www.example.com".into(),
            record_type: DnsRecordType::Mx,
        };
        let query = Message::from_vec(&encode_query(&check, 4242).unwrap()).unwrap();
        assert_eq!(query.metadata.id, 4242);
        assert!(query.metadata.recursion_desired);
        assert_eq!(query.metadata.message_type, MessageType::Query);
        let question = &query.queries[0];
        assert_eq!(question.name().to_string(), "www.example.com.");
        assert_eq!(question.query_type(), RecordType::MX);
    }

    #[test]
    fn an_invalid_name_is_a_config_failure() {
        let check = DnsCheck {
            name: "a..b".into(),
            record_type: DnsRecordType::A,
        };
        let failure = encode_query(&check, 1).unwrap_err();
        assert_eq!(failure.kind(), "config", "{failure}");
    }

    #[test]
    fn garbage_is_a_bad_reply() {
        let failure = check_reply(b"\x01", 1, DnsRecordType::A).unwrap_err();
        assert_eq!(failure.kind(), "bad_reply", "{failure}");
    }
}
