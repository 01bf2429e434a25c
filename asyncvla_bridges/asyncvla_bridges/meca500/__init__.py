"""Meca500 driver: a ROS-free core (driver_core) and a thin node (driver_node) over mecademicpy."""
