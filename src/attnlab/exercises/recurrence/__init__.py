"""Section 3.1 exercises: recurrent cells, a layer over lengths, gradients through time, clipping."""
