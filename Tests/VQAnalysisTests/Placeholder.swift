// local placeholder (not committed): main lists this target before its tests landed
