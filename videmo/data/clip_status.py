"""What became of a clip, in preparation and in prediction: one set of status names."""

OK = "ok"                  # a face was found in at least one frame
NO_FACE = "no_face"        # no face in any frame
EMPTY = "empty"            # a zero-length video
UNREADABLE = "unreadable"  # the file could not be decoded
