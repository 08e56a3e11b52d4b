//! A `PUT` of unknown length (`Transfer-Encoding: chunked`, as `curl -T -`
//! sends from a pipe): S3 needs each request's length, so the component
//! reads the client's body in parts of [`PART_BYTES`], held one at a time,
//! and sends them as a multipart upload. A body that ends within the first
//! part goes as one plain `PUT`.
//!
//! [`Upload::step`] says what to do next: read a part, send a backend
//! request (with the part just read as its body, or a small body of its
//! own), or answer. A failure after the upload was created aborts it, so no
//! parts are left behind as if complete.

use crate::dav::{backend_failed, Reply};
use crate::proxy::{LocalAnswer, Plan};
use crate::scopes::ResourcePath;

/// The part size: the memory one upload holds (S3 wants at least 5 MiB
/// for every part but the last).
pub const PART_BYTES: usize = 8 << 20;

/// S3's limit on parts in one upload (with [`PART_BYTES`], 78 GiB).
pub const MAX_PARTS: usize = 10_000;

/// What happened since the last step.
#[derive(Debug)]
pub enum Event {
    Start,
    /// A part of `bytes` was read; `last`: the client's body ended.
    Part { bytes: usize, last: bool },
    /// The client's body could not be read to its end.
    ClientFailed(String),
    Reply(Reply),
}

/// What the request sent with a [`Step::Send`] carries.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    None,
    /// The part just read.
    Part,
    Bytes(Vec<u8>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Read the next part (up to [`PART_BYTES`]) of the client's body.
    ReadPart,
    Send(Plan, Body),
    Answer(LocalAnswer),
}

#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Start,
    FirstPart,
    /// Create-only: is the object there already?
    Checked,
    SinglePut,
    Created,
    PartSent { last: bool },
    Reading,
    Completed,
    /// Aborting; then the answer kept.
    Aborted,
}

#[derive(Debug)]
pub struct Upload {
    resource: ResourcePath,
    /// Content headers of the client's (`content-type`, …).
    headers: Vec<(String, String)>,
    /// The refusal when the object exists and only `storage.create` was granted.
    if_exists: Option<LocalAnswer>,
    upload_id: Option<String>,
    etags: Vec<String>,
    /// The first part's size and end, while the upload is being created.
    held: Option<(usize, bool)>,
    failure: Option<LocalAnswer>,
    stage: Stage,
}

/// The CompleteMultipartUpload document for parts 1… with `etags`.
pub(crate) fn complete_body(etags: &[String]) -> Vec<u8> {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, etag) in etags.iter().enumerate() {
        xml.push_str(&format!("<Part><PartNumber>{}</PartNumber><ETag>", i + 1));
        crate::dav::escape(&mut xml, etag);
        xml.push_str("</ETag></Part>");
    }
    xml.push_str("</CompleteMultipartUpload>");
    xml.into_bytes()
}

/// The UploadId of a CreateMultipartUpload answer.
pub(crate) fn upload_id(body: &[u8]) -> Option<String> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| lakeport_xml::parse_document(t).ok())
        .filter(|e| e.name == "InitiateMultipartUploadResult")
        .and_then(|e| e.text_of("UploadId").map(String::from))
        .filter(|id| !id.is_empty() && !id.chars().any(char::is_control))
}

fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn ok(reply: &Reply) -> bool {
    (200..300).contains(&reply.status)
}

/// `<Error>` inside a `200` (CompleteMultipartUpload may answer so).
fn error_inside(reply: &Reply) -> bool {
    String::from_utf8_lossy(&reply.body).contains("<Error>")
}

impl Upload {
    pub fn new(resource: ResourcePath, headers: Vec<(String, String)>, if_exists: Option<LocalAnswer>) -> Upload {
        Upload { resource, headers, if_exists, upload_id: None, etags: Vec::new(), held: None, failure: None, stage: Stage::Start }
    }

    fn plan(&self, method: &'static str, query: Vec<(String, String)>, headers: Vec<(String, String)>) -> Plan {
        Plan::backend(method, self.resource.clone(), query, headers)
    }

    fn single_put(&mut self, bytes: usize) -> Step {
        self.stage = Stage::SinglePut;
        let mut headers = self.headers.clone();
        headers.push(("content-length".into(), bytes.to_string()));
        if self.if_exists.is_some() {
            headers.push(("if-none-match".into(), "*".into()));
        }
        Step::Send(self.plan("PUT", Vec::new(), headers), Body::Part)
    }

    fn create(&mut self) -> Step {
        self.stage = Stage::Created;
        Step::Send(self.plan("POST", query(&[("uploads", "")]), self.headers.clone()), Body::None)
    }

    fn send_part(&mut self, bytes: usize, last: bool) -> Step {
        if self.etags.len() >= MAX_PARTS {
            return self.abort(LocalAnswer::text(413, format!("the upload is larger than {MAX_PARTS} parts of {PART_BYTES} bytes")));
        }
        self.stage = Stage::PartSent { last };
        let number = (self.etags.len() + 1).to_string();
        let id = self.upload_id.clone().unwrap_or_default();
        let headers = vec![("content-length".to_string(), bytes.to_string())];
        Step::Send(self.plan("PUT", query(&[("partNumber", &number), ("uploadId", &id)]), headers), Body::Part)
    }

    fn complete(&mut self) -> Step {
        self.stage = Stage::Completed;
        let id = self.upload_id.clone().unwrap_or_default();
        let headers = vec![("content-type".to_string(), "application/xml".to_string())];
        Step::Send(self.plan("POST", query(&[("uploadId", &id)]), headers), Body::Bytes(complete_body(&self.etags)))
    }

    /// Ends with `answer`, aborting the multipart upload first if there is one.
    fn abort(&mut self, answer: LocalAnswer) -> Step {
        match self.upload_id.take() {
            Some(id) => {
                self.failure = Some(answer);
                self.stage = Stage::Aborted;
                Step::Send(self.plan("DELETE", query(&[("uploadId", &id)]), Vec::new()), Body::None)
            }
            None => Step::Answer(answer),
        }
    }

    fn done(reply: &Reply) -> LocalAnswer {
        let mut a = LocalAnswer::text(200, "stored");
        if let Some(etag) = reply.header("etag") {
            a.headers.push(("etag".into(), etag.to_string()));
        }
        a
    }

    pub fn step(&mut self, event: Event) -> Step {
        if let Event::ClientFailed(why) = &event {
            let answer = LocalAnswer::text(400, format!("the request body could not be read: {why}"));
            return self.abort(answer);
        }
        match (&self.stage, event) {
            (Stage::Start, _) => {
                self.stage = Stage::FirstPart;
                Step::ReadPart
            }
            (Stage::FirstPart, Event::Part { bytes, last: true }) => self.single_put(bytes),
            (Stage::FirstPart, Event::Part { bytes, last: false }) => {
                self.held = Some((bytes, false));
                if self.if_exists.is_some() {
                    // A multipart upload cannot be made conditional on
                    // every backend: look first.
                    self.stage = Stage::Checked;
                    return Step::Send(self.plan("HEAD", Vec::new(), Vec::new()), Body::None);
                }
                self.create()
            }
            (Stage::Checked, Event::Reply(r)) if r.status == 404 => self.create(),
            (Stage::Checked, Event::Reply(r)) if ok(&r) => Step::Answer(self.if_exists.take().expect("create-only")),
            (Stage::Checked, Event::Reply(r)) => Step::Answer(backend_failed(&r, "a HEAD of the object")),
            (Stage::SinglePut, Event::Reply(r)) if ok(&r) => Step::Answer(Upload::done(&r)),
            (Stage::SinglePut, Event::Reply(r)) if r.status == 412 && self.if_exists.is_some() => Step::Answer(self.if_exists.take().expect("create-only")),
            (Stage::SinglePut, Event::Reply(r)) => Step::Answer(backend_failed(&r, "the upload")),
            (Stage::Created, Event::Reply(r)) if ok(&r) => {
                let Some(id) = upload_id(&r.body) else {
                    return Step::Answer(LocalAnswer::bad_gateway("its CreateMultipartUpload answer holds no UploadId"));
                };
                self.upload_id = Some(id);
                let (bytes, last) = self.held.take().unwrap_or((0, true));
                self.send_part(bytes, last)
            }
            (Stage::Created, Event::Reply(r)) => Step::Answer(backend_failed(&r, "starting a multipart upload")),
            (Stage::PartSent { last }, Event::Reply(r)) if ok(&r) => {
                let last = *last;
                let Some(etag) = r.header("etag").filter(|e| !e.is_empty()) else {
                    return self.abort(LocalAnswer::bad_gateway("an uploaded part came back without an ETag"));
                };
                self.etags.push(etag.to_string());
                if last {
                    return self.complete();
                }
                self.stage = Stage::Reading;
                Step::ReadPart
            }
            (Stage::PartSent { .. }, Event::Reply(r)) => {
                let failed = backend_failed(&r, "a part of the upload");
                self.abort(failed)
            }
            // The body ended exactly after a full part: nothing more to send.
            (Stage::Reading, Event::Part { bytes: 0, last: true }) => self.complete(),
            (Stage::Reading, Event::Part { bytes, last }) => self.send_part(bytes, last),
            (Stage::Completed, Event::Reply(r)) if ok(&r) && !error_inside(&r) => {
                self.upload_id = None;
                Step::Answer(LocalAnswer::text(200, "stored"))
            }
            (Stage::Completed, Event::Reply(r)) => {
                let failed = backend_failed(&Reply { status: if ok(&r) { 502 } else { r.status }, ..r }, "completing the upload");
                self.abort(failed)
            }
            (Stage::Aborted, _) => Step::Answer(self.failure.take().unwrap_or_else(|| LocalAnswer::bad_gateway("the upload failed"))),
            (stage, event) => Step::Answer(LocalAnswer::misconfigured(&format!("the upload got {event:?} at {stage:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> ResourcePath {
        crate::scopes::normalize_path(p).unwrap()
    }

    fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Event {
        Event::Reply(Reply { status, headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(), body: body.as_bytes().to_vec() })
    }

    fn sent(step: Step) -> (String, Body) {
        match step {
            Step::Send(plan, body) => (plan.describe(), body),
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn a_short_body_is_one_put_of_its_length() {
        let mut u = Upload::new(path("/bkt/a"), vec![("content-type".into(), "text/plain".into())], None);
        assert_eq!(u.step(Event::Start), Step::ReadPart);
        match u.step(Event::Part { bytes: 12, last: true }) {
            Step::Send(plan, Body::Part) => {
                assert_eq!(plan.describe(), "PUT /bkt/a");
                assert!(plan.has_header("content-length", "12") && plan.has_header("content-type", "text/plain"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(u.step(reply(200, &[("ETag", "\"e\"")], "")), Step::Answer(a) if a.status == 200));
    }

    #[test]
    fn a_long_body_goes_in_parts_and_is_completed_with_their_etags() {
        let mut u = Upload::new(path("/bkt/big"), Vec::new(), None);
        u.step(Event::Start);
        assert_eq!(sent(u.step(Event::Part { bytes: PART_BYTES, last: false })), ("POST /bkt/big?uploads=".into(), Body::None));
        let created = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket><Key>big</Key><UploadId>u/1+</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(sent(u.step(reply(200, &[], created))), ("PUT /bkt/big?partNumber=1&uploadId=u%2F1%2B".into(), Body::Part));
        assert_eq!(u.step(reply(200, &[("ETag", "\"p1\"")], "")), Step::ReadPart);
        assert_eq!(sent(u.step(Event::Part { bytes: 5, last: true })).0, "PUT /bkt/big?partNumber=2&uploadId=u%2F1%2B");
        let (request, body) = sent(u.step(reply(200, &[("ETag", "\"p2\"")], "")));
        assert_eq!(request, "POST /bkt/big?uploadId=u%2F1%2B");
        assert_eq!(
            body,
            Body::Bytes(b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;p1&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;p2&quot;</ETag></Part></CompleteMultipartUpload>".to_vec())
        );
        assert!(matches!(u.step(reply(200, &[], "<CompleteMultipartUploadResult/>")), Step::Answer(a) if a.status == 200));

        // Ending on a part boundary: nothing more to send.
        let mut u = Upload::new(path("/bkt/big"), Vec::new(), None);
        u.step(Event::Start);
        u.step(Event::Part { bytes: PART_BYTES, last: false });
        u.step(reply(200, &[], created));
        u.step(reply(200, &[("ETag", "\"p1\"")], ""));
        assert_eq!(sent(u.step(Event::Part { bytes: 0, last: true })).0, "POST /bkt/big?uploadId=u%2F1%2B");
    }

    #[test]
    fn failures_abort_the_upload_and_create_only_never_replaces() {
        let created = "<InitiateMultipartUploadResult><UploadId>id</UploadId></InitiateMultipartUploadResult>";
        let start = || {
            let mut u = Upload::new(path("/bkt/big"), Vec::new(), None);
            u.step(Event::Start);
            u.step(Event::Part { bytes: PART_BYTES, last: false });
            u.step(reply(200, &[], created));
            u
        };
        let mut u = start();
        assert_eq!(sent(u.step(reply(500, &[], ""))).0, "DELETE /bkt/big?uploadId=id");
        assert!(matches!(u.step(reply(204, &[], "")), Step::Answer(a) if a.status == 502));
        let mut u = start();
        u.step(reply(200, &[("ETag", "\"p1\"")], ""));
        assert_eq!(sent(u.step(Event::ClientFailed("reset".into()))).0, "DELETE /bkt/big?uploadId=id");
        assert!(matches!(u.step(reply(204, &[], "")), Step::Answer(a) if a.status == 400));
        let mut u = start();
        u.step(reply(200, &[("ETag", "\"p1\"")], ""));
        u.step(Event::Part { bytes: 0, last: true });
        assert_eq!(sent(u.step(reply(200, &[], "<Error><Code>InternalError</Code></Error>"))).0, "DELETE /bkt/big?uploadId=id");

        let refusal = || Some(LocalAnswer::text(403, "the token lacks the scope storage.modify:/bkt/big"));
        let mut u = Upload::new(path("/bkt/big"), Vec::new(), refusal());
        u.step(Event::Start);
        assert_eq!(sent(u.step(Event::Part { bytes: PART_BYTES, last: false })).0, "HEAD /bkt/big");
        assert!(matches!(u.step(reply(200, &[], "")), Step::Answer(a) if a.status == 403));
        let mut u = Upload::new(path("/bkt/small"), Vec::new(), refusal());
        u.step(Event::Start);
        match u.step(Event::Part { bytes: 3, last: true }) {
            Step::Send(plan, Body::Part) => assert!(plan.has_header("if-none-match", "*")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(u.step(reply(412, &[], "")), Step::Answer(a) if a.status == 403));
    }
}
