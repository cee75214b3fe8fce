<?php

namespace App;

use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;

// The Symfony 5.4 skeleton's kernel, unchanged: config/packages/*.yaml,
// config/services.yaml and config/routes.yaml describe the app.
class Kernel extends BaseKernel
{
    use MicroKernelTrait;
}
