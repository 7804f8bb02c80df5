//! Placing a scope: the one function that turns a [`Scope`] into a
//! [`Placement`], or into the reason no processor satisfies it.
//!
//! It reads what the runtime has ([`Available`]), by kind of processor: the
//! threads of this process (always), the worker processes (when the
//! runtime's router is a cluster, as [`WorkerProcesses`]) and the GPU
//! processors (with the `gpu` feature, as [`GpuProcessors`]). Each layer
//! that brings processors describes them; none resolves scopes itself, so
//! the rules and the messages are written once, here.

use super::{Placement, Scope};

/// The worker processes of a runtime, as placement sees them.
pub(crate) trait WorkerProcesses {
    /// The processes: this one (worker 0) and the workers, `1..size()`.
    fn size(&self) -> usize;
    /// The threads of worker `w` (`1..size()`; this process's are known).
    fn threads(&self, w: usize) -> usize;
}

/// The GPU processors of a runtime, as placement sees them.
pub(crate) trait GpuProcessors {
    /// How many there are (finding them on first use).
    fn count(&self) -> usize;
    /// Their names, for a message, in order.
    fn names(&self) -> Vec<String>;
    /// Why there are none, for a message.
    fn none_found(&self) -> &'static str;
}

/// What a runtime has to place a scope on.
#[derive(Clone, Copy)]
pub(crate) struct Available<'a> {
    /// The threads of this process.
    pub(crate) threads: usize,
    /// The worker processes, when the runtime has some.
    pub(crate) workers: Option<&'a dyn WorkerProcesses>,
    /// The GPU processors, in a build with the `gpu` feature.
    pub(crate) gpus: Option<&'a dyn GpuProcessors>,
}

/// Where a task with `scope` runs among `on`, or why nowhere.
pub(crate) fn place(scope: &Scope, on: &Available<'_>) -> Result<Placement, String> {
    if let Some(gpu) = scope.gpu_id() {
        return place_gpu(gpu, on.gpus);
    }
    let threads_of = |w: usize| match (w, on.workers) {
        (0, _) => on.threads,
        (w, Some(workers)) => workers.threads(w),
        (_, None) => 0,
    };
    let Some(workers) = scope.worker_ids() else { return place_thread(scope.thread_id(), 0, on.threads) };
    match on.workers {
        None => {
            if !workers.contains(&0) {
                let list = workers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                return Err(format!("there is no worker {list}: this runtime runs in one process, worker 0"));
            }
            place_thread(scope.thread_id(), 0, on.threads)
        }
        Some(cluster) => {
            let size = cluster.size();
            if let Some(&w) = workers.iter().find(|&&w| w >= size || w >= 64) {
                return Err(format!("there is no worker {w}: the cluster has workers 0..={}", size - 1));
            }
            if let Some(t) = scope.thread_id() {
                for &w in workers {
                    let has = threads_of(w);
                    if t >= has {
                        return Err(format!(
                            "there is no thread {t} on worker {w}: it has threads 0..={}",
                            has.max(1) - 1
                        ));
                    }
                }
            }
            if let (&[0], Some(t)) = (workers, scope.thread_id()) {
                return Ok(Placement::Thread(t));
            }
            let mask = workers.iter().fold(0u64, |m, &w| m | 1 << w);
            Ok(Placement::Workers { mask, thread: scope.thread_id().map(|t| t as u16) })
        }
    }
}

/// A thread of this process (worker `w`, which is 0), if the scope names one.
fn place_thread(thread: Option<usize>, w: usize, threads: usize) -> Result<Placement, String> {
    match thread {
        None => Ok(Placement::Any),
        Some(t) if t < threads => Ok(Placement::Thread(t)),
        Some(t) => Err(format!("there is no thread {t}: worker {w} has threads 0..={}", threads - 1)),
    }
}

#[cfg_attr(not(feature = "gpu"), allow(clippy::unnecessary_wraps))]
fn place_gpu(gpu: usize, gpus: Option<&dyn GpuProcessors>) -> Result<Placement, String> {
    let Some(gpus) = gpus else {
        return Err(format!(
            "there is no GPU {gpu}: this runtime has no GPU processors (dirk was built without its `gpu` feature)"
        ));
    };
    match gpus.count() {
        #[cfg(feature = "gpu")]
        n if gpu < n => Ok(Placement::Gpu(gpu)),
        0 => Err(format!("there is no GPU {gpu}: {}", gpus.none_found())),
        n => Err(format!("there is no GPU {gpu}: this runtime has GPUs 0..={} ({})", n - 1, gpus.names().join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct ThreeProcesses;

    impl WorkerProcesses for ThreeProcesses {
        fn size(&self) -> usize {
            3
        }
        fn threads(&self, w: usize) -> usize {
            w
        }
    }

    fn one_process(threads: usize) -> Available<'static> {
        Available { threads, workers: None, gpus: None }
    }

    #[test]
    fn single_process_placement() {
        let on = one_process(2);
        assert_eq!(place(&Scope::any(), &on), Ok(Placement::Any));
        assert_eq!(place(&Scope::thread(1), &on), Ok(Placement::Thread(1)));
        assert_eq!(place(&Scope::worker(0).thread(1), &on), Ok(Placement::Thread(1)));
        assert_eq!(place(&Scope::from(Scope::workers([0, 4])), &on), Ok(Placement::Any));
        assert_eq!(place(&Scope::thread(2), &on).unwrap_err(), "there is no thread 2: worker 0 has threads 0..=1");
        assert_eq!(
            place(&Scope::from(Scope::worker(3)), &on).unwrap_err(),
            "there is no worker 3: this runtime runs in one process, worker 0"
        );
        assert_eq!(
            place(&Scope::gpu(0), &on).unwrap_err(),
            "there is no GPU 0: this runtime has no GPU processors (dirk was built without its `gpu` feature)"
        );
    }

    #[test]
    fn cluster_placement() {
        let on = Available { threads: 2, workers: Some(&ThreeProcesses), gpus: None };
        assert_eq!(place(&Scope::any(), &on), Ok(Placement::Any));
        assert_eq!(place(&Scope::worker(0).thread(1), &on), Ok(Placement::Thread(1)));
        assert_eq!(place(&Scope::from(Scope::worker(2)), &on), Ok(Placement::Workers { mask: 0b100, thread: None }));
        assert_eq!(
            place(&Scope::workers([1, 2]).thread(0), &on),
            Ok(Placement::Workers { mask: 0b110, thread: Some(0) })
        );
        assert_eq!(
            place(&Scope::from(Scope::worker(3)), &on).unwrap_err(),
            "there is no worker 3: the cluster has workers 0..=2"
        );
        // Worker 1 has 1 thread here.
        assert_eq!(
            place(&Scope::worker(1).thread(1), &on).unwrap_err(),
            "there is no thread 1 on worker 1: it has threads 0..=0"
        );
    }
}
