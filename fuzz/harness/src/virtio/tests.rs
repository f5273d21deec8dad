//! One test per way a device can lie, against the fake device.

use super::*;
use unikernel_virtio_net::driver::QUEUE;

fn healthy(device_type: DeviceType, queues: usize) -> Rc<RefCell<Device>> {
    let device = Device::new(device_type, FEATURE_VERSION_1 | 1 << 9, vec![0; 8], queues);
    Rc::new(RefCell::new(device.unsettled(0, 256)))
}

fn nic() -> (Nic, Rc<RefCell<Device>>) {
    let device = healthy(DeviceType::Network, 2);
    (Nic::new(Transport::new(Fake(device.clone()))).expect("a healthy device starts"), device)
}

fn disk() -> (Disk, Rc<RefCell<Device>>) {
    let device = healthy(DeviceType::Block, 1);
    (Disk::new(Transport::new(Fake(device.clone()))).expect("a healthy device starts"), device)
}

fn submit(disk: &mut Disk, request: Request) -> Ticket {
    match disk.submit(&mut Some(request), Waker::noop()) {
        Poll::Ready(Ok(ticket)) => ticket,
        other => panic!("{other:?}"),
    }
}

fn read() -> Request {
    Request::Read { sector: 0, buf: vec![0; 4096] }
}

#[test]
fn a_received_frame_of_honest_length_is_handed_on() {
    let (mut nic, device) = nic();
    device.borrow_mut().complete(RX, 0, 12 + 60, None, None).expect("a posted buffer");
    assert_eq!(nic.receive().expect("a frame").bytes(), [0xa5; 60]);
    assert_eq!(nic.stopped(), None);
}

#[test]
fn a_receive_token_beyond_the_queue_stops_the_device() {
    let (mut nic, device) = nic();
    assert!(!device.borrow_mut().inject(RX, QUEUE as u32, 100));
    assert!(nic.receive().is_none());
    assert!(nic.stopped().is_some());
    assert!(!nic.can_transmit() && nic.transmit(60, |_| ()).is_err());
}

#[test]
fn a_send_completion_for_nothing_sent_stops_the_device() {
    let (mut nic, device) = nic();
    assert!(!device.borrow_mut().inject(TX, 0, 0));
    assert!(!nic.can_transmit());
    assert!(nic.stopped().is_some());
}

#[test]
fn a_used_length_beyond_the_buffer_stops_the_device() {
    let (mut nic, device) = nic();
    device.borrow_mut().complete(RX, 0, 4000, None, Some(4000)).expect("a posted buffer");
    if let Some(frame) = nic.receive() {
        panic!("a frame of {} bytes out of a {BUFFER}-byte buffer", frame.bytes().len());
    }
    assert!(nic.stopped().is_some());
}

#[test]
fn a_configuration_that_never_settles_is_refused() {
    let device = Rc::new(RefCell::new(Device::new(DeviceType::Network, 0, vec![0; 8], 2).unsettled(u32::MAX, 256)));
    assert!(Nic::new(Transport::new(Fake(device))).is_err());
}

#[test]
fn an_unknown_block_token_fails_every_request_in_flight_and_later() {
    let (mut disk, device) = disk();
    let (first, second) = (submit(&mut disk, read()), submit(&mut disk, read()));
    assert!(!device.borrow_mut().inject(0, 15, 0));
    for ticket in [first, second] {
        assert!(matches!(disk.poll(&ticket, Waker::noop()), Poll::Ready(Err(BlkError::Driver))));
    }
    assert!(disk.failed().is_some());
    let later = disk.submit(&mut Some(Request::Write { sector: 0, buf: vec![0; 512] }), Waker::noop());
    assert!(matches!(later, Poll::Ready(Err(BlkError::Driver))));
}

#[test]
fn a_completion_without_a_status_fails_the_device() {
    let (mut disk, device) = disk();
    let ticket = submit(&mut disk, read());
    device.borrow_mut().complete(0, 0, u32::MAX, Some(3), None).expect("a request");
    assert!(matches!(disk.poll(&ticket, Waker::noop()), Poll::Ready(Err(BlkError::Driver))));
    assert!(disk.failed().is_some());
}

#[test]
fn an_abandoned_request_keeps_its_buffer_until_the_device_is_done() {
    let (mut disk, device) = disk();
    let ticket = submit(&mut disk, read());
    disk.abandon(ticket);
    assert_eq!(disk.requests(), 1, "the driver holds the buffer the device may still write");
    // The device writes the buffer now: freed early, AddressSanitizer sees it.
    device.borrow_mut().complete(0, 0, u32::MAX, Some(0), None).expect("the request");
    disk.complete();
    assert_eq!(disk.requests(), 0, "freed once the device is done");
    assert!(disk.failed().is_none());
}

#[test]
fn a_flush_waits_for_the_device_without_holding_the_cpu() {
    let (mut disk, device) = disk();
    let flush = submit(&mut disk, Request::Flush);
    assert!(disk.poll(&flush, Waker::noop()).is_pending(), "the device has not answered");
    device.borrow_mut().complete(0, 0, u32::MAX, Some(0), None).expect("the flush");
    assert!(matches!(disk.poll(&flush, Waker::noop()), Poll::Ready(Ok(_))));
}
