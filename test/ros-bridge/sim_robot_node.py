#!/usr/bin/env python3
"""A simulated robot on real ROS 2 (rclpy), for test/ros-bridge/ros2.test.ts and for trying the bridge by hand.

It publishes what a ROBOTIS arm publishes (sensor_msgs/JointState at 100 Hz, a camera at 30 Hz), follows the
trajectory_msgs/JointTrajectory it receives (linear between points, from where it is at receipt, as a
JointTrajectoryController samples them), records everything it gets, and calls the bridge's std_srvs/Trigger
services through the real service layer.

Reports on stdout, one JSON object per line:
  {"event": "ready"}
  {"event": "trajectory", "topic", "stamp", "joint_names", "points": [{"positions", "t"}], "received", "positions"}
  {"event": "status", "status": {...}}                 (the bridge's status topic, parsed)
  {"event": "reply", "id", "service", "success", "message"}
Commands on stdin, one JSON object per line:
  {"call": "start" | "stop" | "emergency_stop", "id": <any>}
It exits when stdin closes.

By hand (after scripts/ensure-ros2.sh):  .venv-ros2/bin/python test/ros-bridge/sim_robot_node.py --help
"""
import argparse
import json
import queue
import sys
import threading
import time

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

OMX_F_JOINTS = 'joint1,joint2,joint3,joint4,joint5,gripper_joint_1'


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def secs(t):
    return t.sec + t.nanosec * 1e-9


class SimRobot(Node):
    def __init__(self, args):
        super().__init__('paig_sim_robot')
        self.args = args
        self.joints = args.joints.split(',')
        self.pos = [0.1 * (i + 1) for i in range(len(self.joints))]
        self.active = None  # (points [(t, pos)], start_t, start_pos)
        self.frame = 0
        self.calls = queue.Queue()
        self.pending = []  # calls waiting for their service to appear
        self.clients_by_name = {}

        self.joint_pub = self.create_publisher(JointState, args.joint_state_topic, 10)
        if args.camera_type == 'compressed':
            with open(args.jpeg_file, 'rb') as f:
                self.jpeg = f.read()
            self.camera_pub = self.create_publisher(CompressedImage, args.camera_topic, qos_profile_sensor_data)
        else:
            self.camera_pub = self.create_publisher(Image, args.camera_topic, qos_profile_sensor_data)
        self.create_subscription(JointTrajectory, args.trajectory_topic, self.on_trajectory, 10)
        self.create_subscription(String, args.status_topic, self.on_status, 10)
        self.create_timer(0.005, self.step)
        self.create_timer(0.01, self.publish_joint_state)
        self.create_timer(1 / 30, self.publish_frame)
        self.create_timer(0.02, self.serve_calls)

    def now(self):
        return secs(self.get_clock().now().to_msg())

    def on_trajectory(self, msg):
        now = self.now()
        stamp = secs(msg.header.stamp)
        start = now if stamp == 0 else stamp
        index = {name: i for i, name in enumerate(self.joints)}
        points = []
        for p in msg.points:
            target = list(self.pos)
            for name, value in zip(msg.joint_names, p.positions):
                if name in index:
                    target[index[name]] = value
            points.append((start + secs(p.time_from_start), target))
        emit({
            'event': 'trajectory',
            'topic': self.args.trajectory_topic,
            'stamp': stamp,
            'received': now,
            'joint_names': list(msg.joint_names),
            'points': [{'positions': list(p.positions), 't': secs(p.time_from_start)} for p in msg.points],
            'positions': list(self.pos),
        })
        self.active = (points, now, list(self.pos))

    def step(self):
        if not self.active or not self.active[0]:
            return
        points, start_t, start_pos = self.active
        t = self.now()
        nxt = next((i for i, p in enumerate(points) if p[0] > t), None)
        if nxt is None:
            self.pos = list(points[-1][1])
            return
        prev_t, prev_pos = (start_t, start_pos) if nxt == 0 else points[nxt - 1]
        next_t, next_pos = points[nxt]
        span = next_t - prev_t
        w = 1.0 if span <= 0 else min(1.0, max(0.0, (t - prev_t) / span))
        self.pos = [a + (b - a) * w for a, b in zip(prev_pos, next_pos)]

    def publish_joint_state(self):
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        # Reverse order plus a joint the bridge does not drive: the bridge must map by name.
        names = list(reversed(self.joints))
        msg.name = names + ['sim_extra_joint']
        msg.position = [self.pos[self.joints.index(n)] for n in names] + [42.0]
        self.joint_pub.publish(msg)

    def publish_frame(self):
        self.frame += 1
        if self.args.camera_type == 'compressed':
            msg = CompressedImage()
            msg.format = 'jpeg'
            msg.data = self.jpeg
        else:
            msg = Image()
            msg.height, msg.width = self.args.height, self.args.width
            msg.encoding = 'rgb8'
            msg.step = msg.width * 3
            msg.data = bytes([self.frame % 256]) * (msg.width * msg.height * 3)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = 'camera1'
        self.camera_pub.publish(msg)

    def on_status(self, msg):
        try:
            emit({'event': 'status', 'status': json.loads(msg.data)})
        except ValueError:
            emit({'event': 'status', 'raw': msg.data})

    def serve_calls(self):
        while not self.calls.empty():
            cmd = self.calls.get()
            name = f"{self.args.service_prefix.rstrip('/')}/{cmd['call']}"
            if name not in self.clients_by_name:
                self.clients_by_name[name] = self.create_client(Trigger, name)
            self.pending.append((cmd, name, time.monotonic() + self.args.service_timeout))
        waiting = []
        for cmd, name, deadline in self.pending:
            client = self.clients_by_name[name]
            if client.service_is_ready():
                future = client.call_async(Trigger.Request())
                future.add_done_callback(lambda f, c=cmd, n=name: self.on_reply(c, n, f))
            elif time.monotonic() > deadline:
                emit({'event': 'reply', 'id': cmd.get('id'), 'service': name, 'success': None, 'message': 'service not found'})
            else:
                waiting.append((cmd, name, deadline))
        self.pending = waiting

    def on_reply(self, cmd, name, future):
        if future.exception() is not None:
            emit({'event': 'reply', 'id': cmd.get('id'), 'service': name, 'success': None, 'message': str(future.exception())})
            return
        res = future.result()
        emit({'event': 'reply', 'id': cmd.get('id'), 'service': name, 'success': res.success, 'message': res.message})


def read_commands(node, done):
    for line in sys.stdin:
        line = line.strip()
        if line:
            try:
                node.calls.put(json.loads(line))
            except ValueError:
                emit({'event': 'error', 'message': f'not JSON: {line}'})
    done.set()


def main():
    p = argparse.ArgumentParser(description='Simulated robot on real ROS 2 for the physical-ai-gateway bridge')
    p.add_argument('--joints', default=OMX_F_JOINTS, help='comma-separated joint names (default: omx_f)')
    p.add_argument('--joint-state-topic', default='/joint_states')
    p.add_argument('--camera-topic', default='/camera1/image_raw')
    p.add_argument('--camera-type', choices=['image', 'compressed'], default='image')
    p.add_argument('--jpeg-file', help='JPEG bytes to publish with --camera-type compressed')
    p.add_argument('--width', type=int, default=32)
    p.add_argument('--height', type=int, default=24)
    p.add_argument('--trajectory-topic', default='/leader/joint_trajectory')
    p.add_argument('--status-topic', default='/physical_ai_bridge/status')
    p.add_argument('--service-prefix', default='/physical_ai_bridge')
    p.add_argument('--service-timeout', type=float, default=20.0, help='seconds to wait for a service to appear')
    args = p.parse_args()
    if args.camera_type == 'compressed' and not args.jpeg_file:
        p.error('--camera-type compressed needs --jpeg-file')

    rclpy.init()
    node = SimRobot(args)
    done = threading.Event()
    threading.Thread(target=read_commands, args=(node, done), daemon=True).start()
    emit({'event': 'ready'})
    try:
        while rclpy.ok() and not done.is_set():
            rclpy.spin_once(node, timeout_sec=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == '__main__':
    main()
