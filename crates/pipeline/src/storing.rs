//! Stage 6, storing: the forms a message is stored in (trace and spam
//! fields in front; one form per distinct set of fields, so recipients
//! with equal verdicts share one blob), each copy's mailbox, and every copy
//! for every recipient in one transaction. Only after it returns may a
//! door say yes.

use store::{InternalDate, NewMessage, SpamNote};

use crate::filing::Placement;
use crate::{Delivered, Error, Pipeline};

/// What one copy is stored as.
pub(crate) struct Form<'a> {
    pub raw: &'a [u8],
    pub analysis: &'a mime::Analysis,
    pub spam: Option<SpamNote>,
}

/// The stored forms of one delivery, and which recipient has which.
pub(crate) struct StoredForms {
    /// (spam fields, bytes, their analysis), one per distinct fields.
    forms: Vec<(String, Vec<u8>, mime::Analysis)>,
    /// For each recipient (in verdict order), the index of their form.
    of: Vec<usize>,
}

impl StoredForms {
    pub fn new(
        prefix: &[u8],
        raw: &[u8],
        verdicts: &[spam::Verdict],
        doubtful: i64,
    ) -> StoredForms {
        let mut forms: Vec<(String, Vec<u8>, mime::Analysis)> = Vec::new();
        let mut of = Vec::with_capacity(verdicts.len());
        for v in verdicts {
            let fields = v.header_fields(doubtful);
            let i = match forms.iter().position(|(f, ..)| *f == fields) {
                Some(i) => i,
                None => {
                    let bytes = [prefix, fields.as_bytes(), raw].concat();
                    let analysis = mime::analyze(&bytes);
                    forms.push((fields, bytes, analysis));
                    forms.len() - 1
                }
            };
            of.push(i);
        }
        StoredForms { forms, of }
    }

    /// The bytes recipient `i` gets (what their filter sees).
    pub fn bytes(&self, i: usize) -> &[u8] {
        &self.forms[self.of[i]].1
    }

    /// Recipient `i`'s form, with their verdict kept in the index.
    pub fn form(&self, i: usize, verdict: &spam::Verdict) -> Form<'_> {
        let (_, raw, analysis) = &self.forms[self.of[i]];
        Form {
            raw,
            analysis,
            spam: Some(SpamNote {
                score: verdict.score,
                reasons: verdict.reasons_text(),
            }),
        }
    }
}

impl Pipeline {
    /// Each placement's mailbox, one copy per mailbox whatever the scripts
    /// said; `usize` says whose form the copy is.
    pub(crate) async fn place(
        &self,
        placements: Vec<(Placement, usize)>,
    ) -> Result<Vec<(store::Mailbox, Placement, usize)>, Error> {
        let mut placed: Vec<(store::Mailbox, Placement, usize)> = Vec::new();
        for (placement, i) in placements {
            let target = self.target(&placement).await?;
            if !placed
                .iter()
                .any(|(m, p, _)| p.account.id == placement.account.id && m.id == target.id)
            {
                placed.push((target, placement, i));
            }
        }
        Ok(placed)
    }

    /// Stores every placed copy in one transaction, each as `form` of its
    /// index says.
    pub(crate) async fn store_placed<'a>(
        &self,
        placed: &[(store::Mailbox, Placement, usize)],
        form: impl Fn(usize) -> Form<'a>,
    ) -> Result<Vec<Delivered>, Error> {
        let now = InternalDate::now();
        let forms: Vec<Form> = placed.iter().map(|(_, _, i)| form(*i)).collect();
        let scores: Vec<Option<i64>> = forms
            .iter()
            .map(|f| f.spam.as_ref().map(|n| n.score))
            .collect();
        let copies = placed
            .iter()
            .zip(forms)
            .map(|((m, placement, _), f)| {
                let (flags, keywords) = placement.store_flags();
                (
                    m.id,
                    NewMessage {
                        raw: f.raw,
                        size: f.analysis.size,
                        flags,
                        keywords,
                        internal_date: now,
                        cache: store::MessageCache::from(f.analysis),
                        spam: f.spam,
                    },
                )
            })
            .collect();
        let stored = self.store.append_copies(copies).await?;
        Ok(stored
            .iter()
            .zip(placed)
            .zip(scores)
            .map(|((s, (m, placement, _)), score)| Delivered {
                account: placement.account.address.clone(),
                mailbox: m.name.clone(),
                uid: s.uid,
                score,
            })
            .collect())
    }
}
