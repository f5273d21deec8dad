//! One query in, one response out: the authoritative lookup (RFC 1034
//! §4.3.2 for a zone without delegations or wildcards) and the response's
//! size limit. Pure and synchronous, so the host tests and the fuzzer drive
//! it directly.

use crate::zone::{Record, Zone};
use alloc::vec::Vec;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::message_builder::{AdditionalBuilder, AnswerBuilder, MessageBuilder, PushError, StaticCompressor};
use domain::base::name::{Name, ToName};
use domain::base::rdata::UnknownRecordData;
use domain::base::{Message, Ttl};

/// The largest response over UDP without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP: usize = 512;
/// The largest DNS message (TCP's two-byte length).
pub const MAX_MESSAGE: usize = 65535;
/// CNAMEs followed within the zone before the answer stops.
const MAX_CHAIN: usize = 8;
/// The OPT record the response carries when the query had one.
const OPT_LEN: usize = 11;

/// How the query came, which bounds the response's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the query's EDNS payload size up to
    /// `max_udp_payload`.
    Udp,
    /// TCP: up to 65,535 bytes.
    Tcp,
}

type Target = StaticCompressor<Vec<u8>>;

/// The response to `query`, or `None` for input that gets no answer: under
/// 12 bytes (no ID to answer to) or itself a response (QR set; answering
/// would let two servers bounce packets forever). `max_udp_payload` is the
/// largest datagram this server sends with EDNS, which its OPT record says.
pub fn respond(zone: &Zone, query: &[u8], transport: Transport, max_udp_payload: u16) -> Option<Vec<u8>> {
    let msg = Message::from_octets(query).ok()?;
    if msg.header().qr() {
        return None;
    }
    let edns = msg.opt().map(|opt| opt.udp_payload_size());
    let limit = match transport {
        Transport::Udp => edns.map_or(PLAIN_UDP, |asked| usize::from(asked.min(max_udp_payload)).max(PLAIN_UDP)),
        Transport::Tcp => MAX_MESSAGE,
    };
    let builder = || {
        let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(512))).ok()?;
        b.set_push_limit(limit - if edns.is_some() { OPT_LEN } else { 0 });
        Some(b)
    };
    let finish = |mut additional: AdditionalBuilder<Target>| -> Option<Vec<u8>> {
        if edns.is_some() {
            additional.set_push_limit(limit);
            additional
                .opt(|opt| {
                    opt.set_udp_payload_size(max_udp_payload);
                    Ok(())
                })
                .ok()?;
        }
        Some(additional.finish().into_target())
    };
    let (Opcode::QUERY, Ok(question)) = (msg.header().opcode(), msg.sole_question()) else {
        // No (or more than one) readable question, or not a query: the
        // header alone, with no question to echo.
        let rcode = if msg.header().opcode() == Opcode::QUERY { Rcode::FORMERR } else { Rcode::NOTIMP };
        let mut b = builder()?;
        let header = b.header_mut();
        header.set_id(msg.header().id());
        header.set_qr(true);
        header.set_opcode(msg.header().opcode());
        header.set_rd(msg.header().rd());
        header.set_rcode(rcode);
        return finish(b.additional());
    };
    let qname = question.qname();
    if !matches!(question.qclass(), Class::IN | Class::ANY) || !qname.ends_with(zone.apex()) {
        return finish(builder()?.start_answer(&msg, Rcode::REFUSED).ok()?.additional());
    }
    let mut answer = builder()?.start_answer(&msg, Rcode::NOERROR).ok()?;
    answer.header_mut().set_aa(true);
    match lookup(zone, qname, question.qtype(), answer) {
        Ok(additional) => finish(additional),
        Err(PushError::ShortBuf | PushError::LimitExceeded) => {
            // Too large for this transport: the question alone with TC, so
            // the client asks again over TCP (RFC 2181 §9).
            let mut answer = builder()?.start_answer(&msg, Rcode::NOERROR).ok()?;
            answer.header_mut().set_aa(true);
            answer.header_mut().set_tc(true);
            finish(answer.additional())
        }
        Err(PushError::CountOverflow) => None,
    }
}

/// Fills the answer and authority sections and sets the response code.
fn lookup(
    zone: &Zone,
    qname: &impl ToName,
    qtype: Rtype,
    mut answer: AnswerBuilder<Target>,
) -> Result<AdditionalBuilder<Target>, PushError> {
    let negative = chase(zone, qname, qtype, &mut answer)?;
    let mut authority = answer.authority();
    if negative {
        // RFC 2308 §3: the SOA, with the TTL a cache may keep the answer.
        let soa = zone.soa();
        let minimum = soa.data[soa.data.len() - 4..].try_into().map_or(0, u32::from_be_bytes);
        authority.push(rr(Record { ttl: soa.ttl.min(Ttl::from_secs(minimum)), ..soa })?)?;
    }
    Ok(authority.additional())
}

/// Answers `qname`, following CNAMEs within the zone; true for a negative
/// answer (NXDOMAIN or NODATA), which needs the SOA.
fn chase(
    zone: &Zone,
    qname: &impl ToName,
    qtype: Rtype,
    answer: &mut AnswerBuilder<Target>,
) -> Result<bool, PushError> {
    let mut found = step(zone, qname, qtype, answer)?;
    let mut hops = 1;
    loop {
        match found {
            Step::Answered => return Ok(false),
            Step::Empty { exists } => {
                if !exists {
                    answer.header_mut().set_rcode(Rcode::NXDOMAIN);
                }
                return Ok(true);
            }
            // Out of the zone: the client resolves the rest itself; and a
            // loop (or a long chain) stops where it is.
            Step::Cname(target) if !target.ends_with(zone.apex()) || hops == MAX_CHAIN => return Ok(false),
            Step::Cname(target) => {
                found = step(zone, &target, qtype, answer)?;
                hops += 1;
            }
        }
    }
}

enum Step {
    Answered,
    Empty { exists: bool },
    Cname(Name<&'static [u8]>),
}

/// Answers `name` alone: its records of `qtype`, or its CNAME to follow.
fn step(zone: &Zone, name: &impl ToName, qtype: Rtype, answer: &mut AnswerBuilder<Target>) -> Result<Step, PushError> {
    if qtype != Rtype::CNAME
        && qtype != Rtype::ANY
        && let Some(cname) = zone.at(name).find(|r| r.rtype == Rtype::CNAME)
    {
        let target = cname.data;
        answer.push(rr(cname)?)?;
        // The zone was checked at boot only for its owners: a bad target
        // ends the chain here.
        return Ok(Name::from_octets(target).map_or(Step::Answered, Step::Cname));
    }
    let mut any = false;
    for record in zone.at(name).filter(|r| qtype == Rtype::ANY || r.rtype == qtype) {
        answer.push(rr(record)?)?;
        any = true;
    }
    Ok(if any { Step::Answered } else { Step::Empty { exists: zone.exists(name) } })
}

/// A record as a builder's `push` takes it.
type Rr = (Name<&'static [u8]>, Class, Ttl, UnknownRecordData<&'static [u8]>);

/// A record for a builder's `push`: its owner is compressed, its data
/// copied as is.
fn rr(record: Record) -> Result<Rr, PushError> {
    let data = UnknownRecordData::from_octets(record.rtype, record.data).map_err(|_| PushError::ShortBuf)?;
    Ok((record.owner, Class::IN, record.ttl, data))
}
