//! The rows of an export (`GET /export`): every page's visits and unique visitors per day, or
//! every retained metric sample, as CSV (RFC 4180, written by the `csv` crate, so page ids with
//! commas, quotes or line breaks survive) or as newline-delimited JSON.

use serde::Serialize;

use crate::api::MetricSample;
use crate::validation::ValidationError;

/// An export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/csv`, a header line first.
    Csv,
    /// `application/x-ndjson`: one JSON object per line.
    Ndjson,
}

impl Format {
    /// `csv` (default) or `ndjson`.
    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        match raw.map(str::trim) {
            None | Some("") | Some("csv") => Ok(Format::Csv),
            Some("ndjson") => Ok(Format::Ndjson),
            Some(_) => Err(ValidationError::ExportInvalid),
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Ndjson => "application/x-ndjson",
        }
    }

    /// The file name's extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// One page's visits on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DayRow {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// The page id.
    pub page: String,
    /// Visits that day.
    pub visits: u64,
    /// Distinct visitors that day.
    pub uniques: u64,
}

/// The header line of a visits export (CSV only; empty for NDJSON).
pub fn visits_header(format: Format) -> Vec<u8> {
    match format {
        Format::Csv => b"date,page,visits,uniques\n".to_vec(),
        Format::Ndjson => Vec::new(),
    }
}

/// The header line of a metrics export (CSV only; empty for NDJSON).
pub fn metrics_header(format: Format) -> Vec<u8> {
    match format {
        Format::Csv => b"timestamp,type,value\n".to_vec(),
        Format::Ndjson => Vec::new(),
    }
}

/// One record as a line in `format`.
pub fn line<T: Serialize>(format: Format, record: &T) -> Vec<u8> {
    match format {
        Format::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new());
            // Serializing plain structs of strings and numbers into memory cannot fail.
            let _ = writer.serialize(record);
            writer.into_inner().unwrap_or_default()
        }
        Format::Ndjson => {
            let mut out = serde_json::to_vec(record).unwrap_or_default();
            out.push(b'\n');
            out
        }
    }
}

/// A metric sample's export line.
pub fn metric_line(format: Format, sample: &MetricSample) -> Vec<u8> {
    #[derive(Serialize)]
    struct Row<'a> {
        timestamp: &'a str,
        #[serde(rename = "type")]
        metric_type: &'a str,
        value: f64,
    }
    line(
        format,
        &Row {
            timestamp: &sample.timestamp,
            metric_type: &sample.metric_type,
            value: sample.value,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_quote_what_needs_it_and_read_back() {
        let row = DayRow {
            date: "2026-11-29".into(),
            page: "a,\"b\"\nc".into(),
            visits: 3,
            uniques: 2,
        };
        let mut bytes = visits_header(Format::Csv);
        bytes.extend(line(Format::Csv, &row));
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let back: Vec<DayRow> = reader.deserialize().map(Result::unwrap).collect();
        assert_eq!(back, vec![row]);
    }

    #[test]
    fn ndjson_is_one_object_per_line() {
        let row = DayRow {
            date: "2026-11-29".into(),
            page: "home".into(),
            visits: 1,
            uniques: 1,
        };
        let text = String::from_utf8(line(Format::Ndjson, &row)).unwrap();
        assert_eq!(
            text,
            "{\"date\":\"2026-11-29\",\"page\":\"home\",\"visits\":1,\"uniques\":1}\n"
        );
        assert!(visits_header(Format::Ndjson).is_empty());
    }

    #[test]
    fn formats_parse() {
        assert_eq!(Format::parse(None), Ok(Format::Csv));
        assert_eq!(Format::parse(Some("ndjson")), Ok(Format::Ndjson));
        assert_eq!(
            Format::parse(Some("xml")),
            Err(ValidationError::ExportInvalid)
        );
    }
}
