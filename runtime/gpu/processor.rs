//! GPU processors: discovery, one runner thread per device, and the queue
//! in front of it.
//!
//! A runtime's [`Processors`] are found on first use (the first
//! `Scope::gpu(i)` placement, GPU task or [`processors`] call): the devices
//! given to [`Builder::gpus`](crate::Builder::gpus), else every device
//! CubeCL's runtimes enumerate. Each gets a [`Runner`]: a thread named
//! `dirk-gpu-<i>` that opens the device's client and then runs jobs from
//! its queue in order.
//!
//! Jobs are tasks placed on the GPU (`Placement::Gpu`) and calls forwarded
//! by [`with_gpu`](super::with_gpu) from other threads. Protocol:
//!
//! 1. A producer pushes the job, then unparks the runner. The runner looks
//!    at its queue before it parks, and a park after an unpark returns at
//!    once, so no job is missed.
//! 2. The runner runs a task with the task's runtime entered, so the task's
//!    own spawns go there. A task whose device cannot be opened fails with
//!    `Error::Gpu`; a task of a runtime that shut down fails with
//!    `Cancelled`.
//! 3. A runner that waits inside a task (a `fetch` in a GPU task) runs
//!    later jobs of its own queue meanwhile ([`help_until`]), so a GPU task
//!    that waits for another GPU task on the same device does not deadlock.
//! 4. Shutdown sets `stop` and unparks; the runner finishes its job, then
//!    refuses what is left (tasks fail with `Cancelled`, calls with
//!    `Error::Gpu`), and so does every push after `stop`.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::Instant;

use crate::sync::Mutex;
use crossbeam_queue::SegQueue;
use cubecl::client::Client;
use cubecl::device::{WgpuBackend, WgpuDeviceKind};

use super::Device;
use super::transfers::{Counters, Transfers};
use crate::error::Error;
use crate::exec::context::Helper;
use crate::exec::extension::Extension;
use crate::exec::wait::Awaited;
use crate::exec::{self, Shared, cancel_unrun, context};
use crate::sched::GpuProcessors;
use crate::task::cell::tell;
use crate::task::listeners::Listener;
use crate::task::raw::TaskRef;

/// The GPU processors of one runtime.
pub(crate) struct Processors {
    chosen: Option<Vec<Device>>,
    runners: OnceLock<Box<[Arc<Runner>]>>,
    stopped: AtomicBool,
}

impl fmt::Debug for Processors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processors").field("found", &self.runners.get().map(|r| r.len())).finish()
    }
}

impl Processors {
    fn new(chosen: Option<Vec<Device>>) -> Self {
        Processors { chosen, runners: OnceLock::new(), stopped: AtomicBool::new(false) }
    }

    /// Every processor, found and started on the first call.
    pub(crate) fn all(&self) -> &[Arc<Runner>] {
        self.runners.get_or_init(|| {
            let devices = match &self.chosen {
                Some(devices) => devices.clone(),
                None => discover(),
            };
            let stopped = self.stopped.load(Ordering::Acquire);
            devices.into_iter().enumerate().map(|(index, device)| Runner::start(index, device, stopped)).collect()
        })
    }

    /// The processor for a GPU task with no GPU scope: the one the caller
    /// runs on if it is one of these, else the one with the fewest jobs
    /// among those whose device opened.
    pub(crate) fn pick(&self) -> Option<&Arc<Runner>> {
        let runners = self.all();
        if let Some(me) = current_runner()
            && let Some(mine) = runners.iter().find(|r| Arc::ptr_eq(r, &me))
        {
            return Some(mine);
        }
        runners
            .iter()
            .filter(|r| !r.is_unavailable())
            .min_by_key(|r| r.jobs.load(Ordering::Relaxed))
            .or_else(|| runners.first())
    }
}

/// The GPU processors, as placement sees them.
impl GpuProcessors for Processors {
    fn count(&self) -> usize {
        self.all().len()
    }

    fn names(&self) -> Vec<String> {
        self.all().iter().map(ToString::to_string).collect()
    }

    fn none_found(&self) -> &'static str {
        NO_DEVICE
    }
}

/// A runtime's GPU processors plug into it as its devices.
impl Extension for Processors {
    fn gpus(&'static self) -> Option<&'static dyn GpuProcessors> {
        Some(self)
    }

    /// Queues a task placed on GPU `index`.
    fn queue(&self, index: usize, task: TaskRef) {
        self.all()[index].push(Job::Task(task));
    }

    /// Stops the runners once the runtime's threads are stopped (a GPU
    /// task waiting for a queued CPU task has seen it fail) and waits for them.
    fn stopped(&'static self) {
        self.stopped.store(true, Ordering::Release);
        for runner in self.runners.get().map_or(&[][..], |r| &r[..]) {
            runner.stop();
        }
    }

    fn as_any(&'static self) -> &'static dyn std::any::Any {
        self
    }
}

/// Gives a new runtime its GPU processors, `chosen` or else the devices
/// found on first use.
pub(crate) fn attach(shared: &'static Shared, chosen: Option<Vec<Device>>) {
    let processors: &'static Processors = Box::leak(Box::new(Processors::new(chosen)));
    shared.set_devices(processors);
}

/// The GPU processors of `shared` (every runtime of a build with the `gpu`
/// feature has them).
pub(crate) fn of(shared: &Shared) -> &'static Processors {
    shared
        .devices()
        .and_then(|d| d.as_any().downcast_ref::<Processors>())
        .expect("a runtime of a build with the `gpu` feature has its GPU processors")
}

/// What [`Processors::place`] says when there is no device at all.
pub(crate) const NO_DEVICE: &str = "this runtime found no GPU device (CubeCL's wgpu runtime needs a Vulkan, \
     Metal, DirectX 12 or OpenGL driver; without a GPU, install Mesa's software Vulkan driver, Debian package \
     `mesa-vulkan-drivers`)";

/// Every device the linked CubeCL runtimes offer; none when enumeration
/// itself fails (a broken driver install).
fn discover() -> Vec<Device> {
    catch_unwind(Device::enumerate_all).unwrap_or_default()
}

/// A job for a runner.
pub(crate) enum Job {
    /// A task placed on this GPU.
    Task(TaskRef),
    /// A call forwarded by `with_gpu`; dropping it uncalled tells its
    /// caller that the runner stopped.
    Call(CallJob<'static>),
}

/// A forwarded call: runs on the runner with the runner at hand.
pub(crate) type CallJob<'a> = Box<dyn FnOnce(&Arc<Runner>) + Send + 'a>;

/// One GPU processor: the device, its client once opened, its queue and
/// its runner thread.
pub(crate) struct Runner {
    pub(crate) index: usize,
    device: Device,
    /// The device's client, or why it could not be opened.
    client: OnceLock<Result<Client, String>>,
    /// The device's own name, once its client is open.
    name: OnceLock<String>,
    queue: SegQueue<Job>,
    /// Jobs queued or running, for [`Processors::pick`].
    jobs: AtomicUsize,
    thread: OnceLock<Thread>,
    join: Mutex<Option<JoinHandle<()>>>,
    stop: AtomicBool,
    pub(crate) counters: Counters,
}

impl fmt::Display for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GPU {} ({})", self.index, self.name())
    }
}

impl Runner {
    fn start(index: usize, device: Device, stopped: bool) -> Arc<Runner> {
        let runner = Arc::new(Runner {
            index,
            device,
            client: OnceLock::new(),
            name: OnceLock::new(),
            queue: SegQueue::new(),
            jobs: AtomicUsize::new(0),
            thread: OnceLock::new(),
            join: Mutex::new(None),
            stop: AtomicBool::new(stopped),
            counters: Counters::default(),
        });
        if stopped {
            return runner;
        }
        let this = Arc::clone(&runner);
        let spawned = thread::Builder::new().name(format!("dirk-gpu-{index}")).spawn(move || this.main());
        match spawned {
            Ok(handle) => {
                let _ = runner.thread.set(handle.thread().clone());
                *runner.join.lock() = Some(handle);
            }
            Err(e) => {
                let _ = runner.client.set(Err(format!("its runner thread could not start: {e}")));
                runner.stop.store(true, Ordering::Release);
            }
        }
        runner
    }

    /// The runner thread's whole life.
    fn main(self: Arc<Self>) {
        let _me = enter(&self);
        let _ = self.client();
        loop {
            if let Some(job) = self.queue.pop() {
                self.run(job);
                continue;
            }
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            thread::park();
        }
        self.refuse_queued();
    }

    /// Queues a job and wakes the runner.
    pub(crate) fn push(self: &Arc<Self>, job: Job) {
        self.jobs.fetch_add(1, Ordering::Relaxed);
        self.queue.push(job);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        if self.stop.load(Ordering::Acquire) {
            self.refuse_queued();
        }
    }

    fn run(self: &Arc<Self>, job: Job) {
        match job {
            Job::Task(task) => {
                let header = task.header();
                if header.rt.is_shutdown() {
                    cancel_unrun(task);
                } else if let Err(reason) = self.client() {
                    let error = Error::Gpu(format!(
                        "task {} `{}` cannot run: {self} is unavailable: {reason}",
                        header.id, header.name
                    ));
                    fail_unrun(task, error);
                } else {
                    let _rt = context::enter_runtime(header.rt);
                    task.run();
                }
            }
            Job::Call(call) => call(self),
        }
        self.jobs.fetch_sub(1, Ordering::Relaxed);
    }

    fn refuse_queued(&self) {
        while let Some(job) = self.queue.pop() {
            match job {
                Job::Task(task) => cancel_unrun(task),
                Job::Call(call) => drop(call),
            }
            self.jobs.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
        let handle = self.join.lock().take();
        if let Some(handle) = handle
            && handle.thread().id() != thread::current().id()
        {
            let _ = handle.join();
        }
    }

    /// The device's client, opened on first use; `Err` says why the device
    /// is unavailable.
    pub(crate) fn client(&self) -> Result<&Client, &str> {
        let opened = self.client.get_or_init(|| {
            let client = open(&self.device)?;
            let _ = self.name.set(client.properties().identity.name.clone());
            Ok(client)
        });
        opened.as_ref().map_err(String::as_str)
    }

    fn is_unavailable(&self) -> bool {
        self.client.get().is_some_and(Result::is_err)
    }

    /// The device's own name (opening it if needed), or how CubeCL names
    /// it when it cannot be opened.
    pub(crate) fn name(&self) -> String {
        let _ = self.client();
        match self.name.get() {
            Some(name) => name.clone(),
            None => describe_device(&self.device),
        }
    }

    /// `Error::Gpu` for a device that cannot be opened.
    pub(crate) fn unavailable(&self, reason: &str) -> Error {
        Error::Gpu(format!("{self} is unavailable: {reason}"))
    }
}

impl Helper for Runner {
    /// Runs queued jobs until `done()` holds (or `awaited`'s deadline
    /// passes): how the runner waits inside a task (protocol step 3).
    fn help_until(self: Arc<Self>, done: &dyn Fn() -> bool, awaited: Option<Awaited<'_>>) -> bool {
        let me = thread::current();
        if let Some(Awaited { header, .. }) = awaited
            && header.listeners.register(&header.state, Listener::Thread(me.clone())).is_err()
        {
            return true;
        }
        loop {
            if done() {
                return true;
            }
            if let Some(job) = self.queue.pop() {
                self.run(job);
                continue;
            }
            match awaited {
                None | Some(Awaited { deadline: None, .. }) => thread::park(),
                Some(Awaited { header, deadline: Some(deadline) }) => {
                    let now = Instant::now();
                    if now >= deadline {
                        header.listeners.unregister_thread(&header.state, &me);
                        return done();
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    }
}

/// Fails a task that will not run, and tells its dependents.
fn fail_unrun(task: TaskRef, error: Error) {
    if let Some(completion) = task.header().fail(error) {
        tell(completion);
    }
    task.run();
}

/// Opens `device`'s client, or says why it cannot be opened.
fn open(device: &Device) -> Result<Client, String> {
    present(device)?;
    let device = device.clone();
    catch_unwind(AssertUnwindSafe(move || device.client())).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("opening it panicked");
        super::context::one_line(message)
    })
}

/// Whether this machine has `device`, asked the way CubeCL checks a named
/// device.
fn present(device: &Device) -> Result<(), String> {
    let found = match device {
        Device::Wgpu(d) => match &d.kind {
            WgpuDeviceKind::DefaultDevice | WgpuDeviceKind::Existing(_) => return Ok(()),
            kind => match d.backend {
                WgpuBackend::Auto => Device::wgpu(kind.clone()),
                WgpuBackend::Vulkan => Device::vulkan(kind.clone()),
                WgpuBackend::Gl => Device::gl(kind.clone()),
                WgpuBackend::Dx12 => Device::dx12(kind.clone()),
                WgpuBackend::Metal => Device::metal_msl(kind.clone()),
                WgpuBackend::WebGpu => Device::webgpu(kind.clone()),
            },
        },
        Device::Cuda(d) => Device::cuda(d.index),
        _ => return Ok(()),
    };
    found.map(drop).map_err(|e| e.to_string())
}

/// A device as CubeCL names it, for messages before it is opened.
fn describe_device(device: &Device) -> String {
    match device {
        Device::Wgpu(d) if d.backend == WgpuBackend::Auto => format!("wgpu {:?}", d.kind),
        Device::Wgpu(d) => format!("wgpu {:?} on {:?}", d.kind, d.backend),
        Device::Cuda(d) => format!("CUDA device {}", d.index),
        other => format!("{other:?}"),
    }
}

/// Marks the current thread as `runner`'s for the life of the guard: it
/// waits by running the runner's queue.
fn enter(runner: &Arc<Runner>) -> impl Drop + use<> {
    context::enter_helper(Arc::clone(runner) as Arc<dyn Helper>)
}

/// The processor whose runner thread this is, if it is one.
pub(crate) fn current_runner() -> Option<Arc<Runner>> {
    let helper: Arc<dyn std::any::Any + Send + Sync> = context::helper()?;
    helper.downcast::<Runner>().ok()
}

/// A GPU processor of a runtime: `Scope::gpu(p.index())` places tasks on it.
///
/// ```
/// for gpu in dirk::gpu::processors() {
///     println!("{gpu}: {:?}", gpu.transfers());
/// }
/// ```
#[derive(Clone)]
pub struct Processor(pub(crate) Arc<Runner>);

impl Processor {
    /// Its index: the `i` of `Scope::gpu(i)`.
    pub fn index(&self) -> usize {
        self.0.index
    }

    /// The device's name (`llvmpipe (LLVM 15.0.6, 256 bits)` for Mesa's
    /// software driver), opening the device if needed; how CubeCL names the
    /// device (`wgpu DiscreteGpu(1)`) when it cannot be opened.
    pub fn name(&self) -> String {
        self.0.name()
    }

    /// The CubeCL device behind it.
    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// Opens the device if it is not open yet: `Err` ([`Error::Gpu`]) when
    /// it cannot be.
    pub fn open(&self) -> Result<(), Error> {
        self.0.client().map(drop).map_err(|reason| self.0.unavailable(reason))
    }

    /// Uploads and downloads so far.
    pub fn transfers(&self) -> Transfers {
        self.0.counters.snapshot()
    }
}

impl fmt::Display for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Processor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Processor").field("index", &self.0.index).field("device", &self.0.device).finish()
    }
}

/// The GPU processors of the current runtime (the one spawns go to),
/// discovering them on the first call.
pub fn processors() -> Vec<Processor> {
    of(exec::current()).all().iter().map(|r| Processor(Arc::clone(r))).collect()
}
