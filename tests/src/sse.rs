//! Server-sent events as a test reads them: one parser of the
//! `text/event-stream` framing for every test of a live feed.

/// One message block of an event stream (comment-only blocks have no
/// `event`).
#[derive(Debug, Default)]
pub struct SseBlock {
    pub id: Option<i64>,
    pub event: Option<String>,
    /// The `data:` lines, joined.
    pub data: String,
}

/// Takes the first complete block (ended by a blank line) off `buffer`.
pub fn take_block(buffer: &mut String) -> Option<SseBlock> {
    let end = buffer.find("\n\n")?;
    let block: String = buffer.drain(..end + 2).collect();
    let mut parsed = SseBlock::default();
    for line in block.lines() {
        let field = |prefix: &str| {
            line.strip_prefix(prefix)
                .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
        };
        if let Some(v) = field("id:") {
            parsed.id = Some(v.parse::<i64>().expect("a numeric id"));
        } else if let Some(v) = field("event:") {
            parsed.event = Some(v);
        } else if let Some(v) = field("data:") {
            parsed.data.push_str(&v);
        }
    }
    Some(parsed)
}
