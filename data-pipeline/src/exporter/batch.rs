//! Turning queued payloads into one request body (a [`Part`]).
//!
//! Fast path: when every payload is v0.4 and v0.4 goes out, and no stage needs to see the spans,
//! the payloads are merged at the msgpack level. The merged body is a new outer array header for
//! the total trace count, followed by each payload's trace bytes as they are. No span is decoded.
//! A single payload in the output format is sent as it is, without a copy. Otherwise, such as
//! v0.4 -> v0.5 output or v0.5 payloads to merge, the spans are decoded, processed and encoded.
//!
//! A malformed payload is caught by the decode, or by the agent's 400 on a merged body (see
//! [`isolate`]). Either way it is dropped alone, never with the batch around it.

use super::codec::{self, Format};
use super::health::DropReason;
use super::queue::Item;
use crate::sample::DroppedP0;
use crate::{Result, Traces};
use bytes::Bytes;

/// One request body and what it stands for.
#[derive(Debug)]
pub(crate) struct Part {
    pub body: Bytes,
    pub format: Format,
    /// Traces in the body (`X-Datadog-Trace-Count`).
    pub traces: usize,
    /// Enqueued traces this part accounts for. Equal to `traces`, except when a single trace was
    /// split in two chunks for a 413: then the first half accounts for it and the second for
    /// none.
    pub account: u64,
    /// Enqueued bytes this part accounts for (for the dropped-bytes counter).
    pub enqueued_bytes: u64,
    /// The payloads it was built from, kept for [`isolate`]; empty for 413 halves.
    pub items: Vec<Item>,
    /// Already isolated once: a further 400 drops it.
    pub isolated: bool,
    /// Built by decoding each payload (and processing the spans when a stage is on): isolating
    /// its payloads after a 400 would find nothing (they all decoded), and processing them again
    /// would count client-side stats twice.
    pub decoded: bool,
    /// Set when client-side stats were computed for it: what P0 dropping removed (headers).
    pub p0: Option<DroppedP0>,
}

/// Traces that do not go out: payloads that could not be decoded (dropped as
/// [`DropReason::Invalid`]), and P0 chunks removed by processing ([`DropReason::P0`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub traces: u64,
    pub bytes: u64,
    pub p0_traces: u64,
}

impl Rejected {
    pub(crate) const REASON: DropReason = DropReason::Invalid;

    fn add(&mut self, it: &Item) {
        self.traces += u64::from(it.traces);
        self.bytes += it.body.len() as u64;
    }
}

/// Span processing between decode and encode (the exporter's stages), if any: returns what P0
/// dropping removed when stats were computed.
pub(crate) type Process<'p> = Option<&'p (dyn Fn(&mut Traces<'_>) -> Option<DroppedP0> + Sync)>;

/// Builds the body for `items` in `target`. `merged`, when given, is the v0.4 body of all the
/// items already merged (a sealed chunk): used as is when v0.4 goes out. Returns the part (None
/// when nothing valid is left) and what was rejected.
pub(crate) fn build(
    items: Vec<Item>,
    merged: Option<Bytes>,
    target: Format,
    process: Process<'_>,
) -> (Option<Part>, Rejected) {
    let enqueued_bytes: u64 = items.iter().map(|i| i.body.len() as u64).sum();
    let account: u64 = items.iter().map(|i| u64::from(i.traces)).sum();
    let passthrough = process.is_none() && items.iter().all(|i| i.format == target);
    if !passthrough {
        return transcode(items, target, process);
    }
    // No decode: the sealed chunk's merged body, a single payload as it is (no copy), or the
    // v0.4 payloads merged here.
    let body = match (target, merged) {
        (Format::V04, Some(body)) => body,
        _ if items.len() == 1 && !items[0].bare => items[0].body.clone(),
        (Format::V04, None) => merge_v04(&items),
        _ => return transcode(items, target, process),
    };
    (
        Some(Part {
            body,
            format: target,
            traces: account as usize,
            account,
            enqueued_bytes,
            items,
            isolated: false,
            decoded: false,
            p0: None,
        }),
        Rejected::default(),
    )
}

/// Concatenates v0.4 payloads: one outer array header for all their traces, then each payload's
/// traces as they are.
pub(crate) fn merge_v04(items: &[Item]) -> Bytes {
    let traces: u64 = items.iter().map(|i| u64::from(i.traces)).sum();
    let len: usize = items.iter().map(|i| i.traces_bytes().len()).sum();
    let mut out = Vec::with_capacity(len + 5);
    // The queue never puts more than u32::MAX traces in one batch.
    let n = u32::try_from(traces).unwrap_or(u32::MAX);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut out, n);
    for it in items {
        out.extend_from_slice(it.traces_bytes());
    }
    Bytes::from(out)
}

/// Decodes every payload, processes the spans and encodes them in `target`. Payloads that do not
/// decode are rejected, the others are kept.
fn transcode(items: Vec<Item>, target: Format, process: Process<'_>) -> (Option<Part>, Rejected) {
    let mut rejected = Rejected::default();
    let mut traces: Traces<'_> = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    let payloads: Vec<std::borrow::Cow<'_, [u8]>> = items.iter().map(Item::payload).collect();
    for (i, it) in items.iter().enumerate() {
        match codec::decode(it.format, &payloads[i]) {
            Ok(t) => {
                traces.extend(t);
                kept.push(i);
            }
            Err(e) => {
                log::debug!("dropping a malformed payload: {e}");
                rejected.add(it);
            }
        }
    }
    if kept.is_empty() {
        return (None, rejected);
    }
    let before = traces.len() as u64;
    let p0 = process.and_then(|p| p(&mut traces));
    // Whole chunks processing removed: P0 dropping (counted in `p0`) and normalization (a chunk
    // it finds invalid).
    let removed = before.saturating_sub(traces.len() as u64);
    let body = match codec::encode_to_vec(target, &traces) {
        Ok(b) => b,
        Err(e) => {
            log::warn!("cannot encode a batch as {target:?}: {e}");
            for i in &kept {
                rejected.add(&items[*i]);
            }
            return (None, rejected);
        }
    };
    let n = traces.len();
    drop(traces);
    let kept_items: Vec<Item> = items
        .into_iter()
        .enumerate()
        .filter(|(i, _)| kept.binary_search(i).is_ok())
        .map(|(_, it)| it)
        .collect();
    let kept_traces: u64 = kept_items.iter().map(|i| u64::from(i.traces)).sum();
    // Chunks removed whole leave the body: P0 ones are sampled out, the others were refused by
    // normalization (accounted as invalid).
    let removed = removed.min(kept_traces);
    let p0_traces = p0.map_or(0, |d| d.traces).min(removed);
    rejected.p0_traces += p0_traces;
    rejected.traces += removed - p0_traces;
    let account = kept_traces - removed;
    let enqueued_bytes = kept_items.iter().map(|i| i.body.len() as u64).sum();
    (
        Some(Part {
            body: Bytes::from(body),
            format: target,
            traces: n,
            account,
            enqueued_bytes,
            items: kept_items,
            isolated: false,
            decoded: true,
            p0,
        }),
        rejected,
    )
}

/// After a 400 on a part built from several payloads: decodes each payload alone, rejects those
/// that do not decode, and rebuilds the part from the rest (marked isolated, so a second 400
/// drops it whole).
pub(crate) fn isolate(part: Part, process: Process<'_>) -> (Option<Part>, Rejected) {
    let mut rejected = Rejected::default();
    let mut good = Vec::with_capacity(part.items.len());
    for it in part.items {
        match codec::decode(it.format, &it.payload()) {
            Ok(_) => good.push(it),
            Err(_) => rejected.add(&it),
        }
    }
    if good.is_empty() {
        return (None, rejected);
    }
    let (built, more) = build(good, None, part.format, process);
    rejected.traces += more.traces;
    rejected.bytes += more.bytes;
    rejected.p0_traces += more.p0_traces;
    (
        built.map(|mut p| {
            p.isolated = true;
            p
        }),
        rejected,
    )
}

/// Re-encodes a part in another format (v0.5 refused by the agent -> v0.4).
pub(crate) fn convert(part: &Part, target: Format) -> Result<Part> {
    let traces = codec::decode(part.format, &part.body)?;
    let body = codec::encode_to_vec(target, &traces)?;
    Ok(Part {
        body: Bytes::from(body),
        format: target,
        traces: traces.len(),
        account: part.account,
        enqueued_bytes: part.enqueued_bytes,
        items: part.items.clone(),
        isolated: part.isolated,
        decoded: part.decoded,
        p0: part.p0,
    })
}

/// Splits a part in two halves after a 413 (see [`codec::split_payload`]). The halves share the
/// account: whole traces go with their half, and a trace cut in two chunks counts in the first.
pub(crate) fn split(part: &Part) -> Result<(Part, Part)> {
    let (a, b) = codec::split_payload(part.format, &part.body)?;
    let (ta, tb) = (
        codec::count_traces(part.format, &a)?,
        codec::count_traces(part.format, &b)?,
    );
    let account_a = (ta as u64).min(part.account);
    let bytes_a = part.enqueued_bytes * a.len() as u64 / (a.len() + b.len()).max(1) as u64;
    let half = |body: Vec<u8>, traces, account, enqueued_bytes, p0| Part {
        body: Bytes::from(body),
        format: part.format,
        traces,
        account,
        enqueued_bytes,
        items: Vec::new(),
        isolated: true,
        decoded: part.decoded,
        p0,
    };
    // The P0 counts (headers) travel once, with the first half.
    let p0_b = part.p0.map(|_| DroppedP0::default());
    Ok((
        half(a, ta, account_a, bytes_a, part.p0),
        half(
            b,
            tb,
            part.account - account_a,
            part.enqueued_bytes - bytes_a,
            p0_b,
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_owned;
    use crate::encode::encode_to_vec;
    use crate::span::Span;

    fn traces(n: usize, first_id: u64) -> Traces<'static> {
        (0..n)
            .map(|t| {
                vec![
                    Span {
                        service: "svc".into(),
                        name: "op".into(),
                        resource: format!("r{t}").into(),
                        trace_id: first_id + t as u64,
                        span_id: 1,
                        ..Span::default()
                    },
                    Span {
                        service: "svc".into(),
                        name: "child".into(),
                        trace_id: first_id + t as u64,
                        span_id: 2,
                        parent_id: 1,
                        ..Span::default()
                    },
                ]
            })
            .collect()
    }

    fn item(format: Format, n: usize, first_id: u64) -> Item {
        let body = encode_to_vec(format, &traces(n, first_id)).unwrap();
        Item::parse(format, Bytes::from(body), 0).unwrap()
    }

    fn ids(format: Format, body: &[u8]) -> Vec<u64> {
        decode_owned(format, body)
            .unwrap()
            .iter()
            .map(|t| t[0].trace_id)
            .collect()
    }

    #[test]
    fn decoded_parts_are_marked() {
        // Sent as enqueued: a 400 may still isolate a malformed payload.
        let (p, _) = build(vec![item(Format::V04, 1, 1)], None, Format::V04, None);
        assert!(!p.unwrap().decoded);
        // Transcoded without processing: every payload decoded already.
        let (p, _) = build(vec![item(Format::V04, 1, 1)], None, Format::V05, None);
        assert!(p.unwrap().decoded);
    }

    #[test]
    fn merge_keeps_every_trace_in_order_across_header_widths() {
        // 20 traces need a 3-byte header; 1 and 2 use the fixarray form.
        let items = vec![
            item(Format::V04, 1, 100),
            item(Format::V04, 20, 200),
            item(Format::V04, 2, 300),
        ];
        assert_eq!(items[1].header_len, 3);
        let (part, rej) = build(items, None, Format::V04, None);
        let part = part.unwrap();
        assert_eq!(rej, Rejected::default());
        assert_eq!(part.traces, 23);
        assert_eq!(part.account, 23);
        let mut want = vec![100];
        want.extend(200..220);
        want.extend([300, 301]);
        assert_eq!(ids(Format::V04, &part.body), want);
        let merged = decode_owned(Format::V04, &part.body).unwrap();
        assert_eq!(merged[0][1].name, "child");
    }

    #[test]
    fn single_payload_goes_out_without_copy() {
        let it = item(Format::V04, 3, 1);
        let ptr = it.body.as_ptr();
        let (part, _) = build(vec![it], None, Format::V04, None);
        assert_eq!(part.unwrap().body.as_ptr(), ptr);
    }

    #[test]
    fn conversion_and_v05_merge_decode_and_reencode() {
        let items = vec![item(Format::V04, 2, 10), item(Format::V05, 3, 20)];
        let (part, rej) = build(items, None, Format::V05, None);
        let part = part.unwrap();
        assert_eq!(rej.traces, 0);
        assert_eq!(part.format, Format::V05);
        assert_eq!(ids(Format::V05, &part.body), vec![10, 11, 20, 21, 22]);
        let back = convert(&part, Format::V04).unwrap();
        assert_eq!(ids(Format::V04, &back.body), vec![10, 11, 20, 21, 22]);
        assert_eq!(back.account, 5);
    }

    #[test]
    fn malformed_payloads_are_rejected_alone() {
        let bad = Item::parse(Format::V04, Bytes::from_static(&[0x91, 0x91, 0x05]), 0).unwrap();
        let items = vec![
            item(Format::V04, 2, 1),
            bad.clone(),
            item(Format::V04, 1, 9),
        ];
        // Conversion path: the decode rejects it.
        let (part, rej) = build(items.clone(), None, Format::V05, None);
        assert_eq!(
            rej,
            Rejected {
                traces: 1,
                bytes: 3,
                p0_traces: 0
            }
        );
        let part = part.unwrap();
        assert_eq!(part.account, 3);
        assert_eq!(part.items.len(), 2);
        // Passthrough: merged as is; isolation after a 400 removes it.
        let (part, rej) = build(items, None, Format::V04, None);
        assert_eq!(rej.traces, 0);
        let part = part.unwrap();
        assert_eq!(part.account, 4);
        let (fixed, rej) = isolate(part, None);
        assert_eq!(
            rej,
            Rejected {
                traces: 1,
                bytes: 3,
                p0_traces: 0
            }
        );
        let fixed = fixed.unwrap();
        assert!(fixed.isolated);
        assert_eq!(ids(Format::V04, &fixed.body), vec![1, 2, 9]);
        // Nothing valid left.
        let (none, rej) = build(vec![bad], None, Format::V05, None);
        assert!(none.is_none());
        assert_eq!(rej.traces, 1);
    }

    #[test]
    fn sealed_chunks_go_out_as_they_are_and_their_slices_still_isolate() {
        use crate::exporter::chunk::{chunk_capacity, Chunk, Pool};
        let pool = Pool::new(chunk_capacity(1 << 20, 32 << 20));
        let mut c = Chunk::new(pool.take().0);
        let bad = Item::parse(Format::V04, Bytes::from_static(&[0x91, 0x91, 0x05]), 0).unwrap();
        for it in [item(Format::V04, 2, 1), bad, item(Format::V04, 1, 9)] {
            c.push(it.traces_bytes(), it.traces, 0);
        }
        let (body, items) = c.seal(&pool);
        let (part, rej) = build(items.clone(), Some(body.clone()), Format::V04, None);
        let part = part.unwrap();
        assert_eq!(rej.traces, 0);
        assert_eq!(
            part.body.as_ptr(),
            body.as_ptr(),
            "the chunk itself, no copy"
        );
        assert_eq!(part.account, 4);
        // The agent's 400: the malformed slice is found and dropped alone.
        let (fixed, rej) = isolate(part, None);
        assert_eq!(rej.traces, 1);
        assert_eq!(ids(Format::V04, &fixed.unwrap().body), vec![1, 2, 9]);
        // v0.5 out: the slices are decoded with their headers put back.
        let (part, rej) = build(items, Some(body), Format::V05, None);
        assert_eq!(rej.traces, 1);
        assert_eq!(ids(Format::V05, &part.unwrap().body), vec![1, 2, 9]);
    }

    #[test]
    fn split_shares_the_account() {
        let (part, _) = build(vec![item(Format::V04, 4, 1)], None, Format::V04, None);
        let part = part.unwrap();
        let (a, b) = split(&part).unwrap();
        assert_eq!(a.account + b.account, 4);
        assert_eq!(a.traces + b.traces, 4);
        assert_eq!(a.enqueued_bytes + b.enqueued_bytes, part.enqueued_bytes);
        // One trace cut in two chunks still accounts for one.
        let (one, _) = build(vec![item(Format::V04, 1, 7)], None, Format::V04, None);
        let (a, b) = split(&one.unwrap()).unwrap();
        assert_eq!((a.traces, b.traces), (1, 1));
        assert_eq!((a.account, b.account), (1, 0));
    }

    #[test]
    fn processing_forces_the_decode_path() {
        let touch = |t: &mut Traces<'_>| {
            for tr in t.iter_mut() {
                for s in tr.iter_mut() {
                    s.service = "processed".into();
                }
            }
            None
        };
        let (part, _) = build(
            vec![item(Format::V04, 1, 1)],
            None,
            Format::V04,
            Some(&touch),
        );
        let part = part.unwrap();
        assert!(
            part.decoded && part.p0.is_none(),
            "processed, no stats computed"
        );
        let back = decode_owned(Format::V04, &part.body).unwrap();
        assert_eq!(back[0][0].service, "processed");
        // P0 dropping: the removed chunks leave the account and are reported as sampled out.
        let drop_first = |t: &mut Traces<'_>| {
            t.remove(0);
            Some(DroppedP0 {
                traces: 1,
                spans: 2,
            })
        };
        let (part, rej) = build(
            vec![item(Format::V04, 3, 1)],
            None,
            Format::V04,
            Some(&drop_first),
        );
        let part = part.unwrap();
        assert_eq!((part.traces, part.account), (2, 2));
        assert_eq!((rej.p0_traces, rej.traces), (1, 0));
        // Normalization dropping a chunk (no P0 report): accounted as invalid.
        let normalize_drop = |t: &mut Traces<'_>| {
            t.pop();
            None
        };
        let (np, rej) = build(
            vec![item(Format::V04, 3, 1)],
            None,
            Format::V04,
            Some(&normalize_drop),
        );
        assert_eq!(np.unwrap().account, 2);
        assert_eq!((rej.p0_traces, rej.traces, rej.bytes), (0, 1, 0));
        assert_eq!(part.p0.map(|d| d.traces), Some(1));
        let (a, b) = split(&part).unwrap();
        assert_eq!(
            a.p0.map(|d| d.traces),
            Some(1),
            "headers go with the first half"
        );
        assert_eq!(b.p0.map(|d| d.traces), Some(0));
    }
}
