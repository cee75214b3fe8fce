<?php

return ['flush' => ['listed']];
