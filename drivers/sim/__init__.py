"""Line-card simulator speaking the real wire protocol, virtual handsets and central office."""
