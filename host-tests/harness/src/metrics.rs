//! Metrics a module defines and updates (`proxy_define_metric` and friends). Like Envoy's stats
//! they are keyed by name, so a reloaded instance that defines the same name continues the same
//! counter.

use std::collections::BTreeMap;

use crate::abi::{MetricType, Status};

#[derive(Debug, Clone)]
struct Metric {
    name: String,
    kind: MetricType,
    value: u64,
    /// Every value recorded into a histogram, in order.
    samples: Vec<u64>,
}

/// Metric values by id, with the ids handed out by name.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    by_name: BTreeMap<String, u32>,
    metrics: Vec<Metric>,
}

impl Metrics {
    pub fn define(&mut self, kind: MetricType, name: &str) -> u32 {
        if let Some(id) = self.by_name.get(name) {
            return *id;
        }
        let id = u32::try_from(self.metrics.len()).unwrap_or(u32::MAX);
        self.metrics.push(Metric {
            name: name.to_string(),
            kind,
            value: 0,
            samples: Vec::new(),
        });
        self.by_name.insert(name.to_string(), id);
        id
    }

    pub fn increment(&mut self, id: u32, offset: i64) -> Status {
        let Some(metric) = self.metric_mut(id) else {
            return Status::NotFound;
        };
        match metric.kind {
            // A counter only grows: Envoy refuses a negative offset for it.
            MetricType::Counter if offset < 0 => Status::BadArgument,
            MetricType::Histogram => Status::BadArgument,
            _ => {
                metric.value = metric.value.saturating_add_signed(offset);
                Status::Ok
            }
        }
    }

    pub fn record(&mut self, id: u32, value: u64) -> Status {
        let Some(metric) = self.metric_mut(id) else {
            return Status::NotFound;
        };
        if metric.kind == MetricType::Histogram {
            metric.samples.push(value);
        }
        metric.value = value;
        Status::Ok
    }

    pub fn get(&self, id: u32) -> Option<u64> {
        self.metrics
            .get(usize::try_from(id).ok()?)
            .map(|metric| metric.value)
    }

    /// The current value of the metric named `name` (for a histogram, its last sample).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.get(*self.by_name.get(name)?)
    }

    /// Every sample recorded into the histogram named `name`.
    pub fn samples(&self, name: &str) -> Option<&[u64]> {
        let id = usize::try_from(*self.by_name.get(name)?).ok()?;
        self.metrics.get(id).map(|metric| metric.samples.as_slice())
    }

    /// Every metric as `(name, value)`, in the order they were defined.
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        self.metrics
            .iter()
            .map(|metric| (metric.name.clone(), metric.value))
            .collect()
    }

    fn metric_mut(&mut self, id: u32) -> Option<&mut Metric> {
        self.metrics.get_mut(usize::try_from(id).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defining_a_name_twice_continues_the_same_counter() {
        let mut metrics = Metrics::default();
        let first = metrics.define(MetricType::Counter, "taskgate.denied");
        assert_eq!(metrics.increment(first, 2), Status::Ok);
        let again = metrics.define(MetricType::Counter, "taskgate.denied");
        assert_eq!(metrics.increment(again, 1), Status::Ok);
        assert_eq!(metrics.value("taskgate.denied"), Some(3));
    }

    #[test]
    fn a_counter_refuses_to_go_down() {
        let mut metrics = Metrics::default();
        let id = metrics.define(MetricType::Counter, "c");
        assert_eq!(metrics.increment(id, -1), Status::BadArgument);
    }
}
