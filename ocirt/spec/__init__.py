"""Container config + image config + resolved facts -> OCI runtime spec. Pure: no I/O.

`builder.build_spec` makes the config.json; `facts` holds its inputs that effectful code
resolves first (`ocirt.runtime.hostfacts` reads them from the host); `user` resolves an
image's User from passwd/group text; `capabilities` names the capability bits; `layout`
says where a container's bundle, netns and cgroup live.
"""
