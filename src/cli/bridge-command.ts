// `bridge`: the ROS 2 bridge's flags declared on the CLI; src/ros-bridge/main.ts turns them into its config (every
// problem of the flags and the config file listed at once) and runs it. Its module loads when the command runs.
import { Option } from '@commander-js/extra-typings';
import { PRESETS } from '../ros-bridge/presets.js';
import { CLIENT_ENV, CliExit, DEFAULT_ZMQ_GATEWAY, type DeclaredCommand } from './commands.js';

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export const bridgeCommand: DeclaredCommand = {
  name: 'bridge',
  summary: 'run the ROS 2 bridge (cameras + joint states → policy → JointTrajectory)',
  define(cmd, io) {
    cmd
      .addOption(new Option('--preset <name>', 'robot preset').choices(Object.keys(PRESETS)))
      .option('-c, --config <file>', 'YAML or JSON bridge config (merged over the preset)')
      .option('--raw-images', 'use sensor_msgs/Image topics (preset topics without /compressed)')
      .option('--resize <WxH[:method]>', 'resize every camera (method nearest | bilinear, default bilinear)')
      // Checked by the bridge's config with its other fields (tcp://, ipc:// or http(s)://), so every problem is listed at once.
      .addOption(new Option('-g, --gateway <address>', `the gateway (tcp:// or ipc:// for the ZMQ door, http:// for the HTTP door; default ${DEFAULT_ZMQ_GATEWAY})`).env(CLIENT_ENV.gateway))
      .addOption(new Option('--framework <name>', 'policy framework (default demo)').env(CLIENT_ENV.framework))
      .option('--rate-hz <hz>', 'control rate (default 30)')
      .option('--instruction <text>', 'task instruction')
      .option('--instruction-topic <topic>', 'std_msgs/String topic that changes the instruction')
      .option('--blending <method>', 'replace | nearest_splice | weighted_average')
      .option('--request-ahead <steps>', 'ask for the next chunk when this many steps remain (default 8)')
      .option('--max-age-ms <ms>', 'refuse inputs older than this (default 500)')
      .option('--watchdog-ms <ms>', 'hold when no fresh chunk for this long (default 1000)')
      .option('--hold-repeat-hz <hz>', 'while held, publish the hold target again at this rate (default 5; 0 = once)')
      .option('--precise-wait-ms <ms>', 'wake this long before each tick, then wait precisely (default 0.5; 0 = timers only)')
      .option('--start', 'start moving at once (default: wait for <prefix>/start)')
      .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:<port>/metrics')
      .option('--log-level <level>', 'debug | info | warn | error')
      .addHelpText('after', '\nNeeds a sourced ROS 2 (source /opt/ros/<distro>/setup.bash) and rclnodejs (npm_config_yes=true npm install rclnodejs).')
      .action(async (o) => {
        const { runBridgeFlags } = await import('../ros-bridge/main.js');
        const flags = Object.fromEntries(Object.entries(o).map(([k, v]) => [kebab(k), v]));
        const code = await runBridgeFlags(flags, io);
        if (code !== 0) throw new CliExit(code);
      });
  },
};
