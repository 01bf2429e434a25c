"""Turn a catalog role into a LaunchDescription (imports `launch` and `launch_ros`).

Each launch file calls `describe(role, config_dir)`: it declares the role's arguments and adds one
OpaqueFunction that, at launch time, reads their values, asks `catalog.plan()` what to start and
returns launch_ros Node actions (and the bag player for replay). Bad argument values stop the
launch with the catalog's message before any node starts.
"""
from __future__ import annotations

import os

from launch import LaunchContext, LaunchDescription
from launch.actions import (DeclareLaunchArgument, EmitEvent, ExecuteProcess, LogInfo,
                            OpaqueFunction, RegisterEventHandler)
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from asyncvla_bringup import catalog


def describe(role_name: str, config_dir: str) -> LaunchDescription:
    role = catalog.ROLES[role_name]
    actions: list = [DeclareLaunchArgument(a.name, default_value=a.default,
                                           description=a.description) for a in role.args]
    actions.append(OpaqueFunction(function=materialize,
                                  args=[role_name, os.path.normpath(config_dir)]))
    return LaunchDescription(actions)


def describe_monitor(share_dir: str) -> LaunchDescription:
    actions: list = [DeclareLaunchArgument(a.name, default_value=a.default,
                                           description=a.description)
                     for a in catalog.MONITOR_ARGS]
    actions.append(OpaqueFunction(function=materialize_monitor,
                                  args=[os.path.normpath(share_dir)]))
    return LaunchDescription(actions)


def materialize_monitor(context: LaunchContext, share_dir: str) -> list:
    values = {a.name: LaunchConfiguration(a.name).perform(context)
              for a in catalog.MONITOR_ARGS}
    return to_actions(catalog.monitor_plan(values, share_dir), "monitor.launch.py:")


def materialize(context: LaunchContext, role_name: str, config_dir: str) -> list:
    role = catalog.ROLES[role_name]
    values = {a.name: LaunchConfiguration(a.name).perform(context) for a in role.args}
    plan = catalog.plan(role_name, values, config_dir)
    return to_actions(plan, f"{role.launch_file}: {role.description}")


def to_actions(plan: catalog.Plan, banner: str) -> list:
    actions: list = [LogInfo(msg=f"{banner} Starting {', '.join(n.name for n in plan.nodes)}")]
    for n in plan.nodes:
        actions.append(Node(package=n.package, executable=n.executable, name=n.name,
                            namespace=n.namespace, parameters=n.parameters,
                            ros_arguments=n.ros_arguments, arguments=n.arguments,
                            additional_env=n.env or None, output="screen",
                            emulate_tty=True))
    for cmd in plan.commands:
        process = ExecuteProcess(cmd=cmd, output="screen", name=cmd[1] + "_" + cmd[2])
        actions.append(process)
        actions.append(RegisterEventHandler(OnProcessExit(
            target_action=process, on_exit=lambda event, _ctx, cmd=cmd: _stop_if(
                catalog.command_exit_reason(cmd, event.returncode)))))
    return actions


def _stop_if(reason: str) -> list:
    """The launch actions for a command's exit: log and shut down when `reason` is set."""
    if not reason:
        return []
    return [LogInfo(msg=reason), EmitEvent(event=Shutdown(reason=reason))]
