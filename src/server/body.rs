//! The body of a JSON-RPC response: the encoded answers, handed to hyper in slices, holding the
//! budget charges of the node answers it was made from ([`Charge`]) until hyper has taken the
//! last slice.
//!
//! hyper copies each frame into its connection's write buffer (`writev(false)`) and asks for the
//! next one only when that buffer has room (about 400 KiB), so a big answer stays in this body,
//! counted in `MAX_BUFFERED_BYTES`, while a slow client reads it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use crate::forward::Charge;

/// Bytes handed to hyper per frame.
const SLICE: usize = 64 << 10;

/// A response body that keeps its answers' budget charges until it has been fully taken.
#[derive(Debug)]
pub(crate) struct ChargedBody {
    rest: Bytes,
    charges: Vec<Charge>,
}

impl ChargedBody {
    /// `data`, keeping `charges` (dropped with the body, or once the last slice is taken).
    pub(crate) fn new(data: Vec<u8>, charges: impl IntoIterator<Item = Charge>) -> ChargedBody {
        let charges = charges.into_iter().filter(|c| !c.is_empty()).collect();
        ChargedBody { rest: Bytes::from(data), charges }
    }
}

impl Body for ChargedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.rest.is_empty() {
            self.charges.clear();
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(SLICE);
        let slice = self.rest.split_to(n);
        if self.rest.is_empty() {
            self.charges.clear();
        }
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}
