"""Line-card wire protocol: sans-IO codec and session, link over pyserial URLs."""
